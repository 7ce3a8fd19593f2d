/* The FUSE file system, on libfuse's low-level API.
 *
 * Every handler resolves the caller (uid, groups) to a principal, decides
 * visibility with policy, and answers from the catalog and the blob store.
 * Visibility differs between callers, so the kernel must never reuse one
 * caller's answer for another: entry and attribute timeouts are 0 and no
 * negative entries are cached (docs/access.md). Only the content pages of a
 * recording may stay cached (keep_cache), because an open has to pass the
 * check first and recordings never change.
 *
 * The backup role sees encrypted/: the vault's blobs as stored and the
 * sealed catalog snapshot, with attributes that only change when the
 * files do, so that incremental backup tools copy each blob once. */
#include "callvault/fs.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/incoming.h"
#include "callvault/log.h"
#include "callvault/meta.h"
#include "callvault/notify.h"
#include "callvault/policy.h"
#include "callvault/retention.h"
#include "callvault/rights.h"
#include "callvault/snapshot.h"
#include "callvault/spool.h"
#include "callvault/tree.h"

#define XATTR_PREFIX "user.callvault."
#define MAX_GROUPS 256
#define PRINCIPAL_CACHE 64
/* The catalog snapshot in encrypted/ is looked at no more often than
 * this: a backup run stats it a few times, and each look takes a copy of
 * the catalog. */
#define SNAPSHOT_INTERVAL_S 30

/* A resolved caller, reused while the directory and the day stay the same
 * and the caller's groups are identical. */
struct cached_principal {
	int used;
	int64_t dir_version;
	int32_t today;
	uint32_t gids[MAX_GROUPS];
	size_t ngids;
	struct principal p;
	uint64_t last_use;
};

struct fs {
	struct vault *v;
	struct audit_log *audit;
	struct incoming *in;
	int64_t mounted_ms;
	pthread_mutex_t lock; /* protects cache, tick and files */
	struct cached_principal cache[PRINCIPAL_CACHE];
	uint64_t tick;
	struct fs_file *files;
	struct snapshot_cache *snap; /* encrypted/catalog.snapshot */
	/* Whether any group grant exists, as of directory version
	 * grants_version: without grants, groups cannot matter and are not
	 * read from /proc. */
	int64_t grants_version;
	int grants_exist;
	/* The maintenance thread (grace period of incoming/, retention). */
	struct fuse_session *se;
	pthread_t maint;
	int maint_running;
	int stopping;              /* protected by lock */
	pthread_cond_t wake;       /* signalled when stopping */
	/* SIGHUP is blocked in every thread and taken by this one, which
	 * reloads what can change at run time (fs_reload). */
	pthread_t sig;
	int sig_running;
	int log_level;             /* in force; only the signal thread */
	char *mountpoint;          /* absolute, as /proc/self/mountinfo has it */
	atomic_int readahead_set;  /* fs_raise_readahead() has run */
};


/* What a request works with: the caller and its catalog connection. */
struct caller {
	struct principal p;
	struct catalog *c;
	struct fs *fs;
	int64_t now_ms;     /* the request's "now", for expiry */
};

/* An open file. Kept on fs->files until released, so that handles the
 * kernel never releases (the session ended with files open) are freed. */
struct fs_file {
	struct fs_file *prev, *next; /* protected by fs->lock */
	enum tree_kind kind;
	struct incoming_handle *pending; /* TREE_PENDING */
	struct blob_reader *blob; /* TREE_OPUS */
	char *json;               /* TREE_JSON */
	size_t json_len;
	int fd;                   /* TREE_ENC_BLOB, TREE_ENC_SNAPSHOT */
	atomic_int read_warned;   /* a read error was logged */
	/* A recording, its .json or a blob: who opened which inode, and its
	 * attributes then (open_attr()). ino 0: not remembered. */
	fuse_ino_t ino;
	uint32_t uid;
	struct stat st;
};

static int is_enc_file(enum tree_kind k)
{
	return k == TREE_ENC_BLOB || k == TREE_ENC_SNAPSHOT;
}

/* A directory listing, taken at opendir so that readdir offsets stay
 * stable while the directory changes. */
struct dir_entry {
	char *name;
	uint64_t ino;
	mode_t mode;
};

struct fs_dir {
	struct dir_entry *e;
	size_t n, cap;
};

static void file_free(struct fs *fs, struct fs_file *f)
{
	uint64_t num;

	/* Handles left at unmount are closed without committing: the audit
	 * writer is gone by then. */
	if (f->pending)
		incoming_release(fs->in, f->pending, 0, &num);
	blob_close(f->blob);
	free(f->json);
	if (is_enc_file(f->kind) && f->fd >= 0)
		close(f->fd);
	free(f);
}

static void file_track(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->lock);
	f->prev = NULL;
	f->next = fs->files;
	if (fs->files)
		fs->files->prev = f;
	fs->files = f;
	pthread_mutex_unlock(&fs->lock);
}

/* The attributes of `ino` when `uid` opened it, if a file of it that
 * `uid` opened is still open: 0 or ENOENT. An open file keeps working
 * after its call expires, is restricted or erased (docs/access.md), and
 * the kernel asks for the attributes again (fstat(2), and reads near the
 * end of the file) without always naming the handle, so the check that
 * now refuses the caller must not make the open file fail. Only the uid
 * that opened it is answered. */
static int open_attr(struct fs *fs, fuse_ino_t ino, uint32_t uid,
		     struct stat *st)
{
	struct fs_file *f;
	int rc = ENOENT;

	pthread_mutex_lock(&fs->lock);
	for (f = fs->files; f; f = f->next) {
		if (f->ino == ino && f->uid == uid) {
			*st = f->st;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

static void file_untrack(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		fs->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&fs->lock);
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int principal_copy(struct principal *dst, const struct principal *src)
{
	*dst = *src;
	dst->agents = NULL;
	if (src->nagents) {
		dst->agents = malloc(src->nagents * sizeof *src->agents);
		if (!dst->agents) {
			dst->nagents = 0;
			return ENOMEM;
		}
		memcpy(dst->agents, src->agents,
		       src->nagents * sizeof *src->agents);
	}
	return 0;
}

static int count_grant(void *ctx, enum role role, uint32_t gid)
{
	(void)role;
	(void)gid;
	*(int *)ctx = 1;
	return 1;
}

static int grants_exist(struct fs *fs, struct catalog *c, int64_t version)
{
	int exist = 0, known;

	pthread_mutex_lock(&fs->lock);
	known = fs->grants_version == version;
	exist = fs->grants_exist;
	pthread_mutex_unlock(&fs->lock);
	if (known)
		return exist;
	exist = 0;
	/* On an error the groups are read: correct either way. */
	if (catalog_grant_list(c, count_grant, &exist) != 0 && !exist)
		return 1;
	pthread_mutex_lock(&fs->lock);
	fs->grants_version = version;
	fs->grants_exist = exist;
	pthread_mutex_unlock(&fs->lock);
	return exist;
}

/* Resolves the caller of `req`. On any failure the caller has no rights
 * (and the error is logged), so a handler can always go on to answer
 * ENOENT. */
static void caller_get(fuse_req_t req, struct caller *cl)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[MAX_GROUPS];
	uint32_t gids[MAX_GROUPS + 1];
	size_t ngids = 0;
	int64_t version;
	int32_t today = clock_local_day(clock_now_ms());
	int n, rc;
	struct cached_principal *slot = NULL;

	memset(cl, 0, sizeof *cl);
	cl->fs = fs;
	cl->now_ms = clock_now_ms();
	cl->p.uid = ctx->uid;
	cl->c = vault_catalog(fs->v);
	if (!cl->c)
		return;
	/* One snapshot for the whole request: consistent answers, and one
	 * set of SQLite file locks instead of one per statement. */
	if (catalog_read_begin(cl->c) != 0) {
		cl->c = NULL;
		return;
	}

	rc = catalog_directory_version(cl->c, &version);
	if (rc) {
		log_warnx("uid %u: cannot read the directory: %s",
			  (unsigned)ctx->uid, strerror(rc));
		return;
	}

	gids[ngids++] = ctx->gid;
	if (grants_exist(fs, cl->c, version)) {
		/* Fewer groups, never more rights: if the kernel's group
		 * list cannot be read, only the primary group counts. */
		n = fuse_req_getgroups(req, MAX_GROUPS, groups);
		if (n > MAX_GROUPS) {
			log_warnx("uid %u: more than %d groups; using the "
				  "first %d", (unsigned)ctx->uid, MAX_GROUPS,
				  MAX_GROUPS);
			n = MAX_GROUPS;
		}
		for (int i = 0; i < n && ngids < MAX_GROUPS; i++)
			if (groups[i] != ctx->gid)
				gids[ngids++] = groups[i];
	}

	pthread_mutex_lock(&fs->lock);
	fs->tick++;
	for (size_t i = 0; i < PRINCIPAL_CACHE; i++) {
		struct cached_principal *e = &fs->cache[i];
		if (e->used && e->p.uid == ctx->uid &&
		    e->dir_version == version && e->today == today &&
		    e->ngids == ngids &&
		    memcmp(e->gids, gids, ngids * sizeof *gids) == 0) {
			e->last_use = fs->tick;
			rc = principal_copy(&cl->p, &e->p);
			pthread_mutex_unlock(&fs->lock);
			if (rc)
				memset(&cl->p, 0, sizeof cl->p);
			return;
		}
	}
	pthread_mutex_unlock(&fs->lock);

	rc = policy_resolve(cl->c, ctx->uid, gids, ngids, today, &cl->p);
	if (rc) {
		log_warnx("uid %u: cannot resolve the caller: %s",
			  (unsigned)ctx->uid, strerror(rc));
		return;
	}
	if (cl->p.untrained)
		log_warnx("uid %u (%s): %s rights withheld: training "
			  "(trained-until) is not valid today",
			  (unsigned)ctx->uid, cl->p.login,
			  cl->p.untrained & ROLE_ADMIN ? "admin" :
							 "supervisor");

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < PRINCIPAL_CACHE; i++) {
		struct cached_principal *e = &fs->cache[i];
		if (!e->used) {
			slot = e;
			break;
		}
		if (!slot || e->last_use < slot->last_use)
			slot = e;
	}
	if (slot->used)
		policy_release(&slot->p);
	slot->used = 0;
	if (principal_copy(&slot->p, &cl->p) == 0) {
		slot->used = 1;
		slot->dir_version = version;
		slot->today = today;
		slot->ngids = ngids;
		memcpy(slot->gids, gids, ngids * sizeof *gids);
		slot->last_use = fs->tick;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* Ends the request's read snapshot early, before work that writes to the
 * catalog on this thread's connection (a commit from incoming/). */
static void caller_end_snapshot(struct caller *cl)
{
	if (cl->c)
		catalog_read_end(cl->c);
}

static void caller_put(struct caller *cl)
{
	if (cl->c)
		catalog_read_end(cl->c);
	policy_release(&cl->p);
}

static void event_of(const struct caller *cl, const char *action,
		     uint64_t num, const char *outcome, const char *detail,
		     struct audit_event *ev)
{
	*ev = (struct audit_event){ .uid = cl->p.uid,
				    .login = cl->p.login,
				    .roles = cl->p.roles,
				    .action = action,
				    .call_num = num,
				    .outcome = outcome,
				    .detail = detail };
}

/* A refused attempt to reach an existing call. Queued, not waited for:
 * the refusal must look exactly like a name that does not exist. */
static void audit_refusal(struct fs *fs, const struct caller *cl,
			  const char *action, uint64_t num, const char *name)
{
	struct audit_event ev;

	event_of(cl, action, num, "denied", name, &ev);
	audit_log_post(fs->audit, &ev);
}

static int stop_at_first(void *ctx, uint32_t agent_id)
{
	(void)agent_id;
	*(int *)ctx = 1;
	return 1;
}

static int stop_at_first_call(void *ctx, const struct call_record *rec)
{
	(void)rec;
	*(int *)ctx = 1;
	return 1;
}

/* Whether a day or agent directory exists for an all-seeing caller: a
 * refused lookup of one is an attempt to reach calls, and is audited. */
static int dir_exists(struct caller *cl, const struct tree_node *n)
{
	int found = 0;

	if (n->kind == TREE_DAY)
		catalog_day_agents(cl->c, n->day, stop_at_first, &found);
	else if (n->kind == TREE_AGENT)
		catalog_calls_of(cl->c, n->day, n->agent_id,
				 stop_at_first_call, &found);
	return found;
}

/* --- visibility ------------------------------------------------------- */

/* A call exists for the caller if policy lets it see the call and the
 * call has not expired: expiry is checked here, at every request, so a
 * call vanishes at its second whether or not the sweeper has run. */
static int call_seen(const struct caller *cl, const struct call_record *rec)
{
	return policy_sees_call(&cl->p, rec) &&
	       !retention_expired(rec, vault_config(cl->fs->v)->retention_months,
				  cl->now_ms);
}

struct any_visible {
	const struct caller *cl;
	int found;
};

static int any_visible_call(void *ctx, const struct call_record *rec)
{
	struct any_visible *a = ctx;

	if (call_seen(a->cl, rec)) {
		a->found = 1;
		return 1; /* stop */
	}
	return 0;
}

/* 1 if the caller sees at least one call of `agent_id` on `day`. */
static int agent_dir_visible(struct caller *cl, int32_t day, uint32_t agent_id)
{
	struct any_visible a = { cl, 0 };

	if (!policy_sees_agent(&cl->p, agent_id))
		return 0;
	if (catalog_calls_of(cl->c, day, agent_id, any_visible_call, &a) < 0)
		return 0;
	return a.found;
}

struct day_scan {
	struct caller *cl;
	int32_t day;
	int found;
};

static int day_scan_agent(void *ctx, uint32_t agent_id)
{
	struct day_scan *s = ctx;

	if (agent_dir_visible(s->cl, s->day, agent_id)) {
		s->found = 1;
		return 1;
	}
	return 0;
}

static int day_visible(struct caller *cl, int32_t day)
{
	struct day_scan s = { cl, day, 0 };

	if (!policy_sees_calls(&cl->p))
		return 0;
	catalog_day_agents(cl->c, day, day_scan_agent, &s);
	return s.found;
}

/* Loads call `num` if the caller may see it. ENOENT otherwise. */
static int call_visible(struct caller *cl, uint64_t num,
			struct call_record *rec)
{
	if (!policy_sees_calls(&cl->p))
		return ENOENT;
	if (catalog_call_get(cl->c, num, rec) != 0)
		return ENOENT;
	return call_seen(cl, rec) ? 0 : ENOENT;
}

/* --- encrypted/ --------------------------------------------------------- */

/* The real blob file of a call, for its attributes. */
static int blob_stat(struct fs *fs, const struct call_record *rec,
		     struct stat *st)
{
	int fd, rc;

	rc = store_blob_open(vault_store(fs->v), rec->day, rec->num, &fd);
	if (rc)
		return rc;
	rc = fstat(fd, st) == 0 ? 0 : errno;
	close(fd);
	return rc;
}

/* A blob is in encrypted/ while its call is in the catalog, has not
 * expired and its file exists: an expired or erased call's blob vanishes
 * at once, before the sweeper deletes the file. Restricted calls stay:
 * the backup must keep them. */
static int blob_live(const struct caller *cl, const struct call_record *rec)
{
	struct stat st;

	return !retention_expired(rec,
				  vault_config(cl->fs->v)->retention_months,
				  cl->now_ms) &&
	       blob_stat(cl->fs, rec, &st) == 0;
}

static int enc_blob_visible(struct caller *cl, uint64_t num,
			    struct call_record *rec)
{
	if (!policy_sees_encrypted(&cl->p))
		return ENOENT;
	if (catalog_call_get(cl->c, num, rec) != 0)
		return ENOENT;
	return blob_live(cl, rec) ? 0 : ENOENT;
}

static int any_live_blob(void *ctx, const struct call_record *rec)
{
	struct any_visible *a = ctx;

	if (blob_live(a->cl, rec)) {
		a->found = 1;
		return 1;
	}
	return 0;
}

static int enc_day_visible(struct caller *cl, int32_t day)
{
	struct any_visible a = { cl, 0 };

	if (!policy_sees_encrypted(&cl->p))
		return 0;
	catalog_calls_list(cl->c, day, NULL, any_live_blob, &a);
	return a.found;
}

/* Whether node `n` exists for the caller; fills rec for files. */
static int node_visible(struct caller *cl, const struct tree_node *n,
			struct call_record *rec)
{
	switch (n->kind) {
	case TREE_ROOT:
		return 0;
	case TREE_INCOMING:
		return policy_sees_incoming(&cl->p) ? 0 : ENOENT;
	case TREE_ENCRYPTED:
	case TREE_ENC_BLOBS:
	case TREE_ENC_SNAPSHOT:
		return policy_sees_encrypted(&cl->p) ? 0 : ENOENT;
	case TREE_ENC_DAY:
		return enc_day_visible(cl, n->day) ? 0 : ENOENT;
	case TREE_ENC_BLOB:
		return enc_blob_visible(cl, n->num, rec);
	case TREE_DAY:
		return day_visible(cl, n->day) ? 0 : ENOENT;
	case TREE_AGENT:
		return agent_dir_visible(cl, n->day, n->agent_id) ? 0 : ENOENT;
	case TREE_OPUS:
	case TREE_JSON:
		return call_visible(cl, n->num, rec);
	case TREE_PENDING: {
		struct incoming_attr a;
		if (!policy_sees_incoming(&cl->p))
			return ENOENT;
		return incoming_getattr(cl->fs->in, n->num, &a);
	}
	default:
		return ENOENT;
	}
}

/* The incoming/ id of a directory node: 0 for incoming/ itself. */
static int pending_dir(const struct tree_node *n, uint64_t *id)
{
	if (n->kind == TREE_INCOMING) {
		*id = INCOMING_ROOT;
		return 1;
	}
	if (n->kind == TREE_PENDING) {
		*id = n->num;
		return 1;
	}
	return 0;
}

/* --- attributes ------------------------------------------------------- */

/* The .json of a call, with its notes. */
static char *render_json(struct catalog *c, const struct call_record *rec,
			 size_t *len)
{
	return rights_render_json(c, rec, len);
}

static void day_start(int32_t day, struct timespec *ts)
{
	/* Directories carry the day's date at 00:00 UTC: stable, and the
	 * same for every caller. */
	ts->tv_sec = (time_t)day * 86400;
	ts->tv_nsec = 0;
}

static void pending_stat(const struct incoming_attr *a, struct stat *st)
{
	struct tree_node n = { .kind = TREE_PENDING, .num = a->id };

	memset(st, 0, sizeof *st);
	st->st_ino = tree_ino(&n);
	st->st_mode = a->is_dir ? S_IFDIR | 0770 : S_IFREG | 0660;
	st->st_nlink = 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_blksize = SPOOL_BLOCK;
	st->st_mtim.tv_sec = a->mtime_ms / 1000;
	st->st_mtim.tv_nsec = (a->mtime_ms % 1000) * 1000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static int node_attr(struct fs *fs, struct caller *cl,
		     const struct tree_node *n, const struct call_record *rec,
		     struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = tree_ino(n);
	st->st_blksize = BLOB_CHUNK_SIZE;
	switch (n->kind) {
	case TREE_ROOT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 1;
		st->st_mtim.tv_sec = fs->mounted_ms / 1000;
		break;
	case TREE_INCOMING:
		st->st_mode = S_IFDIR | 0770;
		st->st_nlink = 1;
		st->st_mtim.tv_sec = fs->mounted_ms / 1000;
		break;
	case TREE_ENCRYPTED:
	case TREE_ENC_BLOBS:
		/* The epoch, on every mount: backup tools keep directory
		 * times too, and these must not change with a remount. */
		st->st_mode = S_IFDIR | 0550;
		st->st_nlink = 1;
		break;
	case TREE_ENC_DAY:
		st->st_mode = S_IFDIR | 0550;
		st->st_nlink = 1;
		day_start(n->day, &st->st_mtim);
		break;
	case TREE_ENC_BLOB:
	case TREE_ENC_SNAPSHOT: {
		/* Size and times of the real file: they change only when
		 * the file does. */
		struct stat real;
		int rc = n->kind == TREE_ENC_BLOB ?
				 blob_stat(fs, rec, &real) :
				 snapshot_cache_stat(fs->snap, cl->now_ms,
						     &real);
		if (rc)
			return ENOENT;
		st->st_mode = S_IFREG | 0440;
		st->st_nlink = 1;
		st->st_size = real.st_size;
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_mtim = real.st_mtim;
		st->st_atim = real.st_mtim;
		st->st_ctim = real.st_ctim;
		return 0;
	}
	case TREE_PENDING: {
		struct incoming_attr a;
		int rc = incoming_getattr(fs->in, n->num, &a);
		if (rc)
			return rc;
		pending_stat(&a, st);
		return 0;
	}
	case TREE_DAY:
		st->st_mode = S_IFDIR | 0550;
		st->st_nlink = 1; /* "unknown": find must not skip subdirs */
		day_start(n->day, &st->st_mtim);
		break;
	case TREE_AGENT: {
		uint32_t uid;

		st->st_mode = S_IFDIR | 0550;
		st->st_nlink = 1;
		day_start(n->day, &st->st_mtim);
		/* One query: this runs for every lookup and stat of an
		 * agent directory, several times per directory in a find. */
		if (n->agent_id &&
		    catalog_agent_uid(cl->c, n->agent_id, &uid) == 0)
			st->st_uid = uid;
		break;
	}
	case TREE_OPUS:
	case TREE_JSON: {
		st->st_mode = S_IFREG | 0440;
		st->st_nlink = 1;
		st->st_uid = rec->agent_uid;
		st->st_mtim.tv_sec = rec->start_ms / 1000;
		st->st_mtim.tv_nsec = (rec->start_ms % 1000) * 1000000;
		if (n->kind == TREE_OPUS) {
			st->st_size = (off_t)rec->size;
		} else {
			size_t len = 0;
			char *js = render_json(cl->c, rec, &len);
			if (!js)
				return ENOMEM;
			free(js);
			st->st_size = (off_t)len;
		}
		st->st_blocks = (st->st_size + 511) / 512;
		break;
	}
	default:
		return ENOENT;
	}
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return 0;
}

static void reply_entry(fuse_req_t req, struct fs *fs, struct caller *cl,
			const struct tree_node *n,
			const struct call_record *rec)
{
	struct fuse_entry_param e;
	int rc;

	memset(&e, 0, sizeof e);
	rc = node_attr(fs, cl, n, rec, &e.attr);
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	e.ino = e.attr.st_ino;
	e.generation = 1;
	e.attr_timeout = 0;  /* per-caller: never cached */
	e.entry_timeout = 0;
	fuse_reply_entry(req, &e);
}

/* --- lookup ----------------------------------------------------------- */

static int lookup_child(struct fs *fs, struct caller *cl,
			const struct tree_node *parent,
			const char *name, struct tree_node *n,
			struct call_record *rec)
{
	memset(n, 0, sizeof *n);
	switch (parent->kind) {
	case TREE_ROOT:
		if (strcmp(name, "incoming") == 0) {
			n->kind = TREE_INCOMING;
		} else if (strcmp(name, "encrypted") == 0) {
			n->kind = TREE_ENCRYPTED;
		} else {
			n->kind = TREE_DAY;
			if (clock_parse_day(name, &n->day) != 0 ||
			    tree_ino(n) == 0)
				return ENOENT;
		}
		break;
	case TREE_DAY:
		n->kind = TREE_AGENT;
		n->day = parent->day;
		if (strcmp(name, CALL_UNASSIGNED_DIR) == 0)
			n->agent_id = 0;
		else if (!call_login_valid(name) ||
			 catalog_agent_id(cl->c, name, &n->agent_id) != 0)
			return ENOENT;
		break;
	case TREE_AGENT: {
		char hhmmss[7], want[CLOCK_HHMMSS_LEN];
		enum tree_kind kind;
		uint64_t num;
		int rc;

		if (tree_parse_call_name(name, &kind, &num, hhmmss) != 0)
			return ENOENT;
		n->kind = kind;
		n->num = num;
		rc = call_visible(cl, num, rec);
		/* An expired call is gone for everyone: not a refusal. */
		if (rc == ENOENT && catalog_call_get(cl->c, num, rec) == 0 &&
		    !retention_expired(rec, vault_config(fs->v)->retention_months,
				       cl->now_ms))
			audit_refusal(fs, cl,
				      kind == TREE_OPUS ? "lookup-opus" :
							  "lookup-json",
				      num, name);
		if (rc)
			return rc;
		clock_local_hhmmss(rec->start_ms, want);
		/* The name must be exactly the call's own, in its own
		 * directory: no other path reaches a call. */
		if (rec->day != parent->day || rec->agent_id != parent->agent_id ||
		    strcmp(hhmmss, want) != 0)
			return ENOENT;
		return 0;
	}
	case TREE_INCOMING:
	case TREE_PENDING: {
		struct incoming_attr a;
		uint64_t dir;
		int rc;

		if (!pending_dir(parent, &dir))
			return ENOENT;
		rc = incoming_lookup(fs->in, dir, name, &a);
		if (rc)
			return rc;
		n->kind = TREE_PENDING;
		n->num = a.id;
		return 0;
	}
	case TREE_ENCRYPTED:
		if (strcmp(name, TREE_ENC_BLOBS_NAME) == 0)
			n->kind = TREE_ENC_BLOBS;
		else if (strcmp(name, TREE_ENC_SNAPSHOT_NAME) == 0)
			n->kind = TREE_ENC_SNAPSHOT;
		else
			return ENOENT;
		break;
	case TREE_ENC_BLOBS:
		n->kind = TREE_ENC_DAY;
		if (clock_parse_day(name, &n->day) != 0 || tree_ino(n) == 0)
			return ENOENT;
		break;
	case TREE_ENC_DAY: {
		int rc;

		n->kind = TREE_ENC_BLOB;
		if (tree_parse_blob_name(name, &n->num) != 0)
			return ENOENT;
		rc = enc_blob_visible(cl, n->num, rec);
		if (rc)
			return rc;
		/* Only in its own day directory. */
		return rec->day == parent->day ? 0 : ENOENT;
	}
	default:
		return ENOENT;
	}
	if (node_visible(cl, n, rec) == 0)
		return 0;
	if ((n->kind == TREE_DAY || n->kind == TREE_AGENT) &&
	    dir_exists(cl, n))
		audit_refusal(fs, cl,
			      n->kind == TREE_DAY ? "lookup-day" : "lookup-agent",
			      0, name);
	return ENOENT;
}

static void cv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct caller cl;
	struct tree_node pn, n;
	struct call_record rec;
	int rc;

	caller_get(req, &cl);
	tree_decode(parent, &pn);
	/* Below a day or an agent directory the child's own check implies
	 * the parent's (a visible call lies in a visible agent directory of
	 * a visible day; a live blob, a day of encrypted/ that lists it),
	 * so it is not asked twice; incoming/ needs the parent's check,
	 * which is the recorder role. */
	if (pn.kind == TREE_DAY || pn.kind == TREE_AGENT ||
	    pn.kind == TREE_ENC_DAY)
		rc = 0;
	else
		rc = node_visible(&cl, &pn, &rec);
	if (!rc)
		rc = lookup_child(fs, &cl, &pn, name, &n, &rec);
	if (rc)
		fuse_reply_err(req, rc);
	else
		reply_entry(req, fs, &cl, &n, &rec);
	caller_put(&cl);
}

/* fstat() of an open encrypted/catalog.snapshot: the size and times of
 * the version that descriptor reads, which a refresh may have replaced
 * since (a backup tool that reads st_size bytes must get them all). */
static void snapshot_handle_attr(const struct fuse_file_info *fi,
				 struct stat *st)
{
	const struct fs_file *f;
	struct stat real;

	if (!fi || !fi->fh)
		return;
	f = (const struct fs_file *)(uintptr_t)fi->fh;
	if (f->kind != TREE_ENC_SNAPSHOT || fstat(f->fd, &real) != 0)
		return;
	st->st_size = real.st_size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = real.st_mtim;
	st->st_atim = real.st_mtim;
	st->st_ctim = real.st_ctim;
}

static void cv_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	struct stat st;
	int rc;

	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (!rc) {
		rc = node_attr(fs, &cl, &n, &rec, &st);
		if (!rc && n.kind == TREE_ENC_SNAPSHOT)
			snapshot_handle_attr(fi, &st);
	} else if (rc == ENOENT && (n.kind == TREE_OPUS ||
				    n.kind == TREE_JSON ||
				    n.kind == TREE_ENC_BLOB)) {
		rc = open_attr(fs, ino, cl.p.uid, &st);
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, 0);
	caller_put(&cl);
}

/* Modifications: a recording and the tree above it never change. A caller
 * that cannot see the object gets ENOENT, never a hint that it exists. */
static int refuse_modify(fuse_req_t req, fuse_ino_t ino)
{
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	int rc;

	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	caller_put(&cl);
	return rc ? rc : EROFS;
}

/* For operations that change incoming/: 0 with the directory's id if
 * `ino` is a directory of incoming/ the caller may write; ENOENT if the
 * caller cannot see it; EROFS for the rest of the tree. */
static int writable_dir(struct caller *cl, fuse_ino_t ino, uint64_t *dir)
{
	struct tree_node n;
	struct call_record rec;
	int rc;

	tree_decode(ino, &n);
	rc = node_visible(cl, &n, &rec);
	if (rc)
		return rc;
	return pending_dir(&n, dir) ? 0 : EROFS;
}

/* Recorders' writers change modes, owners and times after writing: that
 * succeeds and changes nothing. A size change is a truncate. */
static void cv_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	struct stat st;
	int rc;

	(void)fi;
	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (!rc && n.kind != TREE_PENDING && n.kind != TREE_INCOMING)
		rc = EROFS;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (n.kind != TREE_PENDING)
			rc = EISDIR;
		else
			rc = incoming_truncate(fs->in, n.num,
					       (uint64_t)attr->st_size);
	}
	if (!rc)
		rc = node_attr(fs, &cl, &n, &rec, &st);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, 0);
	caller_put(&cl);
}

/* Links, symbolic links and device nodes exist nowhere in the tree. In a
 * directory of incoming/ that the caller may write they are refused with
 * EPERM, as by a file system without them (EROFS would tell a recorder
 * that incoming/ is read-only); elsewhere as every change: EROFS, or
 * ENOENT for what the caller cannot see. */
static int refuse_node(fuse_req_t req, fuse_ino_t parent)
{
	struct caller cl;
	uint64_t dir;
	int rc;

	caller_get(req, &cl);
	rc = writable_dir(&cl, parent, &dir);
	caller_put(&cl);
	return rc ? rc : EPERM;
}

static void cv_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, refuse_node(req, parent));
}

static void cv_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct caller cl;
	struct incoming_attr a;
	struct fuse_entry_param e;
	uint64_t dir;
	int rc;

	(void)mode;
	caller_get(req, &cl);
	rc = writable_dir(&cl, parent, &dir);
	if (!rc)
		rc = incoming_mkdir(fs->in, dir, name, ctx->uid, ctx->gid, &a);
	if (rc) {
		fuse_reply_err(req, rc);
	} else {
		memset(&e, 0, sizeof e);
		pending_stat(&a, &e.attr);
		e.ino = e.attr.st_ino;
		e.generation = 1;
		fuse_reply_entry(req, &e);
	}
	caller_put(&cl);
}

/* unlink and rmdir: by name, in a directory of incoming/. */
static void pending_name_op(fuse_req_t req, fuse_ino_t parent,
			    const char *name,
			    int (*op)(struct incoming *in, uint64_t dir,
				      const char *name))
{
	struct caller cl;
	uint64_t dir;
	int rc;

	caller_get(req, &cl);
	rc = writable_dir(&cl, parent, &dir);
	if (!rc)
		rc = op(cl.fs->in, dir, name);
	caller_put(&cl);
	fuse_reply_err(req, rc);
}

static void cv_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pending_name_op(req, parent, name, incoming_unlink);
}

static void cv_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pending_name_op(req, parent, name, incoming_rmdir);
}

/* Audits a call committed (or rejected) by a recorder's close or rename. */
static void audit_ingest(struct fs *fs, const struct caller *cl, int rc,
			 uint64_t num)
{
	struct audit_event ev;

	if (rc == 0 && num == 0)
		return; /* nothing was committed */
	event_of(cl, "ingest", num, rc ? "error" : "ok",
		 rc == EINVAL ? "rejected: quarantined" :
		 rc ? strerror(rc) : "incoming", &ev);
	if (audit_log_write(fs->audit, &ev) != 0)
		log_warnx("audit: cannot record the ingest of c-%06" PRIu64,
			  num);
}

static void cv_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	(void)name;
	fuse_reply_err(req, refuse_node(req, parent));
}

/* Within incoming/ only. A rename can complete a pair (NAME.tmp renamed
 * to NAME.wav): the call is then committed before the rename returns, and
 * a rejection is the rename's error. */
static void cv_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct caller cl;
	uint64_t dir, newdir, num = 0;
	int rc;

	caller_get(req, &cl);
	rc = writable_dir(&cl, parent, &dir);
	if (!rc)
		rc = writable_dir(&cl, newparent, &newdir);
	if (!rc && (flags & ~(unsigned)RENAME_NOREPLACE))
		rc = EINVAL;
	if (!rc)
		rc = incoming_rename(cl.fs->in, dir, name, newdir, newname,
				     (flags & RENAME_NOREPLACE) != 0);
	if (!rc) {
		caller_end_snapshot(&cl);
		rc = incoming_settle(cl.fs->in, newdir, newname, &num);
		audit_ingest(cl.fs, &cl, rc, num);
	}
	caller_put(&cl);
	fuse_reply_err(req, rc);
}

static void cv_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	int rc;

	(void)newname;
	/* The source first: a file the caller cannot see is ENOENT. */
	rc = refuse_modify(req, ino);
	if (rc == EROFS)
		rc = refuse_node(req, newparent);
	fuse_reply_err(req, rc);
}

static void cv_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct caller cl;
	struct incoming_attr a;
	struct fuse_entry_param e;
	struct fs_file *f = NULL;
	uint64_t dir;
	int rc;

	(void)mode;
	caller_get(req, &cl);
	rc = writable_dir(&cl, parent, &dir);
	if (!rc && !(f = calloc(1, sizeof *f)))
		rc = ENOMEM;
	if (!rc)
		rc = incoming_create(fs->in, dir, name, ctx->uid, ctx->gid, &a,
				     &f->pending);
	if (rc) {
		free(f);
		fuse_reply_err(req, rc);
	} else {
		f->kind = TREE_PENDING;
		file_track(fs, f);
		fi->fh = (uint64_t)(uintptr_t)f;
		/* Pending files change under their writers: no page cache. */
		fi->direct_io = 1;
		memset(&e, 0, sizeof e);
		pending_stat(&a, &e.attr);
		e.ino = e.attr.st_ino;
		e.generation = 1;
		if (fuse_reply_create(req, &e, fi) != 0) {
			/* The kernel will not release what it never got. */
			file_untrack(fs, f);
			file_free(fs, f);
		}
	}
	caller_put(&cl);
}

static void cv_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, refuse_modify(req, ino));
}

static void cv_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	fuse_reply_err(req, refuse_modify(req, ino));
}

static void cv_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	int rc;

	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (!rc && (mask & W_OK) && n.kind != TREE_INCOMING &&
	    n.kind != TREE_PENDING)
		rc = EROFS;
	caller_put(&cl);
	fuse_reply_err(req, rc);
}

/* --- files ------------------------------------------------------------ */

/* A file of encrypted/: ciphertext only, so its reads are not audited (an
 * entry per blob per backup run would also change the snapshot every
 * time and defeat incremental backups). */
static int enc_open(struct fs *fs, struct caller *cl,
		    const struct tree_node *n, const struct call_record *rec,
		    struct fuse_file_info *fi)
{
	struct fs_file *f;
	int rc;

	f = calloc(1, sizeof *f);
	if (!f)
		return ENOMEM;
	f->kind = n->kind;
	if (n->kind == TREE_ENC_BLOB) {
		rc = store_blob_open(vault_store(fs->v), rec->day, rec->num,
				     &f->fd);
		/* Blobs never change while they live. */
		fi->keep_cache = 1;
	} else {
		struct stat st;
		/* The open serves the current snapshot, the one the
		 * caller's last stat described (or a newer one). A refresh
		 * replaces the file, and this descriptor keeps reading the
		 * version it opened: its reads bypass the page cache, which
		 * readers of other versions share (one inode), and its
		 * fstat() describes that version (cv_getattr). */
		rc = snapshot_cache_stat(fs->snap, cl->now_ms, &st);
		if (!rc)
			rc = snapshot_cache_open(fs->snap, &f->fd);
		fi->keep_cache = 0;
		fi->direct_io = 1;
	}
	if (rc) {
		free(f);
		return rc == ENOENT ? ENOENT : EIO;
	}
	if (n->kind == TREE_ENC_BLOB &&
	    node_attr(fs, cl, n, rec, &f->st) == 0) {
		f->ino = tree_ino(n);
		f->uid = cl->p.uid;
	}
	file_track(fs, f);
	fi->fh = (uint64_t)(uintptr_t)f;
	return 0;
}

/* "maj:min" of the topmost callvault mount on fs->mountpoint, from
 * /proc/self/mountinfo (a stat() of the mount point would be a request to
 * this daemon). 0, or ENOENT. */
static int mount_device(const struct fs *fs, char *dev, size_t devlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return errno;
	while (getline(&line, &cap, f) > 0) {
		char majmin[32], mp[4096], *sep = strstr(line, " - ");
		char *o;
		const char *i;

		/* id parent maj:min root mount-point options ... - type */
		if (!sep || strncmp(sep, " - fuse.callvault ", 18) != 0 ||
		    sscanf(line, "%*s %*s %31s %*s %4095s", majmin, mp) != 2)
			continue;
		/* The kernel writes space, tab, newline and backslash in
		 * octal (\040). */
		for (i = mp, o = mp; *i; o++) {
			if (i[0] == '\\' && i[1] >= '0' && i[1] <= '3' &&
			    i[2] >= '0' && i[2] <= '7' && i[3] >= '0' &&
			    i[3] <= '7') {
				*o = (char)((i[1] - '0') << 6 |
					    (i[2] - '0') << 3 | (i[3] - '0'));
				i += 4;
			} else {
				*o = *i++;
			}
		}
		*o = '\0';
		if (strcmp(mp, fs->mountpoint) == 0) {
			snprintf(dev, devlen, "%s", majmin);
			found = 1; /* the last one is on top */
		}
	}
	free(line);
	fclose(f);
	return found ? 0 : ENOENT;
}

/* The kernel reads ahead at most 128 KiB on a FUSE mount (the default of
 * its bdi; the max_readahead of INIT can only lower it), so a sequential
 * reader gets 128 KiB READs however large max_read is. With 1 MiB READs a
 * cold sequential read went from about gocryptfs's throughput to 1.2 to
 * 1.4 times it (docs/performance.md, row 1). The bdi keeps the setting
 * only once INIT has been answered, hence at the first open. Best effort:
 * where /sys is not writable the mount works as before, with a log line
 * saying so. */
#define READ_AHEAD_KB 1024

static void fs_raise_readahead(struct fs *fs)
{
	char dev[32], path[96];
	FILE *f;
	int rc;

	/* Every open comes here: a load, so that only the first one
	 * writes the shared flag. */
	if (atomic_load(&fs->readahead_set) ||
	    atomic_exchange(&fs->readahead_set, 1) || !fs->mountpoint)
		return;
	rc = mount_device(fs, dev, sizeof dev);
	if (!rc) {
		snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb",
			 dev);
		f = fopen(path, "we");
		if (!f) {
			rc = errno;
		} else {
			fprintf(f, "%d\n", READ_AHEAD_KB);
			rc = fclose(f) == 0 ? 0 : errno;
		}
	}
	if (rc)
		log_info("read-ahead stays at the kernel's default (%s)",
			 strerror(rc));
	else
		log_debug("read-ahead of bdi %s set to %d KiB", dev,
			  READ_AHEAD_KB);
}

static void cv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	struct fs_file *f = NULL;
	int rc;

	fs_raise_readahead(fs);
	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (rc)
		goto out;
	if (n.kind == TREE_PENDING) {
		f = calloc(1, sizeof *f);
		if (!f) {
			rc = ENOMEM;
			goto out;
		}
		f->kind = TREE_PENDING;
		rc = incoming_open(fs->in, n.num, (fi->flags & O_TRUNC) != 0,
				   &f->pending);
		if (rc)
			goto out;
		fi->direct_io = 1;
		file_track(fs, f);
		fi->fh = (uint64_t)(uintptr_t)f;
		f = NULL;
		goto out;
	}
	if (n.kind != TREE_OPUS && n.kind != TREE_JSON &&
	    !is_enc_file(n.kind)) {
		rc = EISDIR;
		goto out;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		rc = EROFS;
		goto out;
	}
	if (is_enc_file(n.kind)) {
		rc = enc_open(fs, &cl, &n, &rec, fi);
		goto out;
	}
	f = calloc(1, sizeof *f);
	if (!f) {
		rc = ENOMEM;
		goto out;
	}
	f->kind = n.kind;
	if (n.kind == TREE_OPUS) {
		rc = vault_blob_open(fs->v, &rec, &f->blob);
		if (rc) {
			log_warnx("c-%06" PRIu64 ": cannot open the recording: %s",
				  rec.num, strerror(rc));
			rc = EIO;
			goto out;
		}
		/* Recordings never change, and an open must pass the check
		 * above, so their pages may stay in the kernel's cache. */
		fi->keep_cache = 1;
	} else {
		f->json = render_json(cl.c, &rec, &f->json_len);
		if (!f->json) {
			rc = ENOMEM;
			goto out;
		}
		fi->keep_cache = 0;
	}
	/* No open without its audit entry on disk. */
	{
		struct audit_event ev;
		event_of(&cl, n.kind == TREE_OPUS ? "open-opus" : "open-json",
			 rec.num, "ok", NULL, &ev);
		rc = audit_log_write(fs->audit, &ev);
		if (rc) {
			log_warnx("c-%06" PRIu64 ": open refused: the audit "
				  "entry cannot be written: %s",
				  rec.num, strerror(rc));
			rc = EIO;
			goto out;
		}
	}
	if (node_attr(fs, &cl, &n, &rec, &f->st) == 0) {
		f->ino = ino;
		f->uid = cl.p.uid;
	}
	file_track(fs, f);
	fi->fh = (uint64_t)(uintptr_t)f;
	f = NULL;
out:
	if (f)
		file_free(fs, f);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
	caller_put(&cl);
}

/* Bytes of a file of encrypted/, exactly as stored: short only at the
 * end of the file. */
static ssize_t enc_pread(int fd, void *buf, size_t size, off_t off)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = pread(fd, (char *)buf + got, size - got,
				  off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* A recording that cannot be read gives its reader EIO, never bytes that
 * failed their check, and the log one line per open naming the call, so
 * that a damaged or shortened blob is noticed by whoever runs the vault
 * and not only by the reader. */
static void read_failed(struct fs_file *f, fuse_ino_t ino, off_t off,
			int err)
{
	struct tree_node n;

	if (atomic_exchange(&f->read_warned, 1))
		return;
	tree_decode(ino, &n);
	log_warnx("c-%06" PRIu64 ": cannot read the recording at offset "
		  "%jd: %s", n.num, (intmax_t)off, strerror(err));
}

/* Each worker thread keeps the buffer its READ replies are made in: the
 * plaintext of a read is decrypted into it and wiped once the reply is
 * written. A buffer allocated per request was memory new to the kernel at
 * every READ, and its page faults took half of the daemon's time in a
 * cold sequential read (docs/performance.md). Guarded memory, so that
 * plaintext is never swapped out; grown to the largest READ the thread has
 * served (at most max_read, 1 MiB; 128 KiB with the kernel's read-ahead)
 * and freed when the thread exits. */
#define READ_BUF_MIN (128u << 10)

struct read_buf {
	unsigned char *p;        /* guarded */
	size_t cap;
};

static pthread_key_t read_buf_tls;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;
static int read_buf_ok;

static void read_buf_free(void *arg)
{
	struct read_buf *b = arg;

	sodium_free(b->p);
	free(b);
}

static void read_buf_init(void)
{
	read_buf_ok = pthread_key_create(&read_buf_tls, read_buf_free) == 0;
}

/* The calling thread's buffer of at least `size` bytes; NULL on ENOMEM. */
static unsigned char *read_buf_get(size_t size)
{
	struct read_buf *b;
	unsigned char *p;

	pthread_once(&read_buf_once, read_buf_init);
	if (!read_buf_ok)
		return NULL;
	b = pthread_getspecific(read_buf_tls);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b)
			return NULL;
		if (pthread_setspecific(read_buf_tls, b) != 0) {
			free(b);
			return NULL;
		}
	}
	if (b->cap >= size)
		return b->p;
	if (size < READ_BUF_MIN)
		size = READ_BUF_MIN;
	p = sodium_malloc(size);
	if (!p)
		return NULL;
	sodium_free(b->p);
	b->p = p;
	b->cap = size;
	return p;
}

static void cv_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	unsigned char *buf;
	ssize_t n;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Not the handle's: the kernel may send RELEASE, and another thread
	 * free the handle, as soon as the reply has been written. */
	buf = read_buf_get(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (f->kind == TREE_PENDING) {
		n = incoming_read(fs_of(req)->in, f->pending, buf, size,
				  (uint64_t)off);
	} else if (f->kind == TREE_JSON) {
		size_t o = (size_t)off < f->json_len ? (size_t)off : f->json_len;
		n = (ssize_t)(f->json_len - o < size ? f->json_len - o : size);
		memcpy(buf, f->json + o, (size_t)n);
	} else if (is_enc_file(f->kind)) {
		n = enc_pread(f->fd, buf, size, off);
	} else {
		n = blob_pread(f->blob, buf, size, (uint64_t)off);
		if (n < 0)
			read_failed(f, ino, off, (int)-n);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, (const char *)buf, (size_t)n);
	/* A failed read may have left part of its plaintext behind. */
	sodium_memzero(buf, n >= 0 ? (size_t)n : size);
}

static void cv_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	ssize_t n;

	(void)ino;
	if (f->kind != TREE_PENDING || off < 0) {
		fuse_reply_err(req, f->kind != TREE_PENDING ? EBADF : EINVAL);
		return;
	}
	n = incoming_write(fs_of(req)->in, f->pending, buf, size,
			   (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* close(): for a pending file, the moment a call may be committed; the
 * reply waits for it. */
static void cv_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	struct caller cl;
	uint64_t num = 0;
	int rc;

	(void)ino;
	if (!f || f->kind != TREE_PENDING) {
		fuse_reply_err(req, 0);
		return;
	}
	caller_get(req, &cl);
	caller_end_snapshot(&cl);
	rc = incoming_flush(cl.fs->in, f->pending, &num);
	audit_ingest(cl.fs, &cl, rc, num);
	caller_put(&cl);
	fuse_reply_err(req, rc);
}

static void cv_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	struct fs *fs = fs_of(req);

	(void)ino;
	if (f && f->kind == TREE_PENDING) {
		struct caller cl;
		uint64_t num = 0;
		int rc;

		file_untrack(fs, f);
		caller_get(req, &cl);
		caller_end_snapshot(&cl);
		rc = incoming_release(fs->in, f->pending, 1, &num);
		f->pending = NULL;
		audit_ingest(fs, &cl, rc, num);
		caller_put(&cl);
		file_free(fs, f);
	} else if (f) {
		file_untrack(fs, f);
		file_free(fs, f);
	}
	fuse_reply_err(req, 0);
}

/* --- directories ------------------------------------------------------ */

static int dir_add(struct fs_dir *d, const char *name, uint64_t ino,
		   mode_t mode)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct dir_entry *e = realloc(d->e, cap * sizeof *e);
		if (!e)
			return ENOMEM;
		d->e = e;
		d->cap = cap;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return ENOMEM;
	d->e[d->n].ino = ino;
	d->e[d->n].mode = mode;
	d->n++;
	return 0;
}

static void dir_free(struct fs_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

struct list_ctx {
	struct caller *cl;
	struct fs_dir *d;
	int32_t day;
	int rc;
};

static int list_day(void *ctx, int32_t day)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .kind = TREE_DAY, .day = day };
	char name[CLOCK_DAY_LEN];

	if (tree_ino(&n) == 0 || !day_visible(l->cl, day))
		return 0;
	clock_format_day(day, name);
	l->rc = dir_add(l->d, name, tree_ino(&n), S_IFDIR);
	return l->rc;
}

static int list_agent(void *ctx, uint32_t agent_id)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .kind = TREE_AGENT, .day = l->day,
			       .agent_id = agent_id };
	char login[CALL_LOGIN_LEN];

	if (tree_ino(&n) == 0 || !agent_dir_visible(l->cl, l->day, agent_id))
		return 0;
	if (agent_id == 0)
		snprintf(login, sizeof login, "%s", CALL_UNASSIGNED_DIR);
	else if (catalog_agent_login(l->cl->c, agent_id, login) != 0)
		return 0;
	l->rc = dir_add(l->d, login, tree_ino(&n), S_IFDIR);
	return l->rc;
}

static int list_call(void *ctx, const struct call_record *rec)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .num = rec->num };
	char name[TREE_NAME_LEN];
	size_t len;

	if (!call_seen(l->cl, rec))
		return 0;
	n.kind = TREE_OPUS;
	tree_call_name(rec, TREE_OPUS, name);
	l->rc = dir_add(l->d, name, tree_ino(&n), S_IFREG);
	if (l->rc)
		return l->rc;
	n.kind = TREE_JSON;
	/* The same name with the other extension: formatting a name (the
	 * local time, the call id) is a quarter of a large listing's CPU,
	 * so it is done once per call. */
	len = strlen(name);
	if (len > 5 && strcmp(name + len - 5, ".opus") == 0)
		memcpy(name + len - 4, "json", 4);
	else
		tree_call_name(rec, TREE_JSON, name);
	l->rc = dir_add(l->d, name, tree_ino(&n), S_IFREG);
	return l->rc;
}

static int list_pending(void *ctx, const char *name,
			const struct incoming_attr *a)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .kind = TREE_PENDING, .num = a->id };

	return dir_add(l->d, name, tree_ino(&n),
		       a->is_dir ? S_IFDIR : S_IFREG);
}

static int list_enc_day(void *ctx, int32_t day)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .kind = TREE_ENC_DAY, .day = day };
	char name[CLOCK_DAY_LEN];

	if (tree_ino(&n) == 0 || !enc_day_visible(l->cl, day))
		return 0;
	clock_format_day(day, name);
	l->rc = dir_add(l->d, name, tree_ino(&n), S_IFDIR);
	return l->rc;
}

static int list_enc_blob(void *ctx, const struct call_record *rec)
{
	struct list_ctx *l = ctx;
	struct tree_node n = { .kind = TREE_ENC_BLOB, .num = rec->num };
	char name[TREE_NAME_LEN];

	if (tree_ino(&n) == 0 || !blob_live(l->cl, rec))
		return 0;
	tree_blob_name(rec->num, name);
	l->rc = dir_add(l->d, name, tree_ino(&n), S_IFREG);
	return l->rc;
}

static void cv_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct caller cl;
	struct tree_node n, parent = { .kind = TREE_ROOT };
	struct call_record rec;
	struct fs_dir *d = NULL;
	struct list_ctx l;
	int rc;

	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (rc)
		goto out;
	if (n.kind == TREE_OPUS || n.kind == TREE_JSON ||
	    is_enc_file(n.kind)) {
		rc = ENOTDIR;
		goto out;
	}
	if (n.kind == TREE_PENDING) {
		struct incoming_attr a;
		if (incoming_getattr(cl.fs->in, n.num, &a) != 0 || !a.is_dir) {
			rc = ENOTDIR;
			goto out;
		}
	}
	d = calloc(1, sizeof *d);
	if (!d) {
		rc = ENOMEM;
		goto out;
	}
	if (n.kind == TREE_AGENT) {
		parent.kind = TREE_DAY;
		parent.day = n.day;
	} else if (n.kind == TREE_ENC_BLOBS) {
		parent.kind = TREE_ENCRYPTED;
	} else if (n.kind == TREE_ENC_DAY) {
		parent.kind = TREE_ENC_BLOBS;
	}
	rc = dir_add(d, ".", ino, S_IFDIR);
	if (!rc)
		rc = dir_add(d, "..",
			     n.kind == TREE_ROOT ? ino : tree_ino(&parent),
			     S_IFDIR);
	if (rc)
		goto out;

	l = (struct list_ctx){ &cl, d, n.day, 0 };
	switch (n.kind) {
	case TREE_ROOT:
		if (policy_sees_calls(&cl.p))
			catalog_days(cl.c, list_day, &l);
		if (!l.rc && policy_sees_encrypted(&cl.p))
			l.rc = dir_add(d, "encrypted", TREE_INO_ENCRYPTED,
				       S_IFDIR);
		if (!l.rc && policy_sees_incoming(&cl.p))
			l.rc = dir_add(d, "incoming", TREE_INO_INCOMING,
				       S_IFDIR);
		break;
	case TREE_DAY:
		catalog_day_agents(cl.c, n.day, list_agent, &l);
		break;
	case TREE_AGENT:
		if (policy_sees_agent(&cl.p, n.agent_id))
			catalog_calls_of(cl.c, n.day, n.agent_id, list_call,
					 &l);
		break;
	case TREE_ENCRYPTED: {
		struct stat st;
		l.rc = dir_add(d, TREE_ENC_BLOBS_NAME, TREE_INO_ENC_BLOBS,
			       S_IFDIR);
		/* Listing encrypted/ is where a backup run starts: the
		 * snapshot is brought up to date here. */
		if (!l.rc && snapshot_cache_stat(cl.fs->snap, cl.now_ms,
						 &st) == 0)
			l.rc = dir_add(d, TREE_ENC_SNAPSHOT_NAME,
				       TREE_INO_ENC_SNAPSHOT, S_IFREG);
		break;
	}
	case TREE_ENC_BLOBS:
		catalog_days(cl.c, list_enc_day, &l);
		break;
	case TREE_ENC_DAY:
		catalog_calls_list(cl.c, n.day, NULL, list_enc_blob, &l);
		break;
	case TREE_INCOMING:
	case TREE_PENDING: {
		uint64_t dir;
		if (pending_dir(&n, &dir))
			l.rc = incoming_readdir(cl.fs->in, dir, list_pending,
						&l);
		break;
	}
	default:
		break;
	}
	rc = l.rc;
	if (rc)
		goto out;
	fi->fh = (uint64_t)(uintptr_t)d;
	d = NULL;
out:
	dir_free(d);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
	caller_put(&cl);
}

static void cv_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf;
	size_t used = 0;

	(void)ino;
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = d->e[i].ino,
				   .st_mode = d->e[i].mode };
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						d->e[i].name, &st,
						(off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void cv_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	dir_free((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* --- extended attributes ---------------------------------------------- */

struct xattr_buf {
	const char *want; /* NULL: list names */
	char *out;
	size_t len, cap;
	int found;
};

static int xattr_collect(void *ctx, const char *name, const char *value)
{
	struct xattr_buf *x = ctx;
	const char *s;
	size_t n;
	char full[128];

	snprintf(full, sizeof full, XATTR_PREFIX "%s", name);
	if (x->want) {
		if (strcmp(x->want, full) != 0)
			return 0;
		s = value;
		n = strlen(value);
		x->found = 1;
	} else {
		s = full;
		n = strlen(full) + 1;
	}
	if (x->len + n > x->cap) {
		size_t cap = (x->len + n) * 2;
		char *p = realloc(x->out, cap);
		if (!p)
			return ENOMEM;
		x->out = p;
		x->cap = cap;
	}
	memcpy(x->out + x->len, s, n);
	x->len += n;
	return x->want ? 1 : 0;
}

static void xattr_reply(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct caller cl;
	struct tree_node n;
	struct call_record rec;
	struct xattr_buf x = { .want = name };
	int rc;

	caller_get(req, &cl);
	tree_decode(ino, &n);
	rc = node_visible(&cl, &n, &rec);
	if (rc)
		goto out;
	/* Only user.callvault.* exists. Saying that other namespaces are not
	 * supported (rather than "no such attribute") lets tools such as ls
	 * stop asking for SELinux labels and ACLs on every file. */
	if (name && strncmp(name, "user.", 5) != 0) {
		rc = EOPNOTSUPP;
		goto out;
	}
	if ((n.kind == TREE_OPUS || n.kind == TREE_JSON) &&
	    meta_xattrs(&rec, xattr_collect, &x) < 0) {
		rc = ENOMEM;
		goto out;
	}
	if (name && !x.found) {
		rc = ENODATA;
		goto out;
	}
	if (size == 0)
		fuse_reply_xattr(req, x.len);
	else if (size < x.len)
		rc = ERANGE;
	else
		fuse_reply_buf(req, x.out, x.len);
out:
	if (rc)
		fuse_reply_err(req, rc);
	free(x.out);
	caller_put(&cl);
}

static void cv_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	xattr_reply(req, ino, name, size);
}

static void cv_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_reply(req, ino, NULL, size);
}

/* --- file system ------------------------------------------------------ */

static void cv_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	/* Counts of calls or bytes would tell a caller about calls it may
	 * not see, so statfs reports none. */
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* STATUS= for the service manager: what `systemctl status` shows. */
static void fs_notify_status(struct fs *fs, const char *state)
{
	struct catalog *c;
	uint64_t calls = 0, bytes = 0;
	int rc;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	c = vault_catalog(fs->v);
	if (c)
		catalog_counts(c, &calls, &bytes);
	rc = notify_sendf("%sSTATUS=serving %" PRIu64 " calls (%" PRIu64
			  " MiB of audio)", state, calls, bytes >> 20);
	if (rc)
		log_warnx("notify: %s", strerror(rc));
}

static void cv_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Nothing may be cached on the strength of one caller's answer. */
	conn->want &= ~FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* O_TRUNC arrives with the open, where incoming/ handles it. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	log_info("mounted (protocol %u.%u; new recordings sealed with %s)",
		 conn->proto_major, conn->proto_minor,
		 blob_alg_name(vault_blob_alg(fs->v)));
	/* The kernel's INIT is answered: the mount is live. */
	fs_notify_status(fs, "READY=1\n");
}

static void cv_destroy(void *userdata)
{
	(void)userdata;
	log_info("unmounted");
}

static const struct fuse_lowlevel_ops cv_ops = {
	.init = cv_init,
	.destroy = cv_destroy,
	.lookup = cv_lookup,
	.getattr = cv_getattr,
	.setattr = cv_setattr,
	.mknod = cv_mknod,
	.mkdir = cv_mkdir,
	.unlink = cv_unlink,
	.rmdir = cv_rmdir,
	.symlink = cv_symlink,
	.rename = cv_rename,
	.link = cv_link,
	.open = cv_open,
	.read = cv_read,
	.write = cv_write,
	.flush = cv_flush,
	.release = cv_release,
	.opendir = cv_opendir,
	.readdir = cv_readdir,
	.releasedir = cv_releasedir,
	.statfs = cv_statfs,
	.setxattr = cv_setxattr,
	.getxattr = cv_getxattr,
	.listxattr = cv_listxattr,
	.removexattr = cv_removexattr,
	.access = cv_access,
	.create = cv_create,
};

/* Calls committed or rejected without a request (recovery, grace period)
 * are audited as the daemon's own acts. */
static void fs_report(void *ctx, int rc, uint64_t num, const char *path)
{
	struct fs *fs = ctx;
	/* Not the path: recorders choose names, and the trail must never
	 * hold what a name might carry (a phone number). */
	struct audit_event ev = { .uid = (uint32_t)getuid(),
				  .login = "",
				  .action = "ingest",
				  .call_num = num,
				  .outcome = rc ? "error" : "ok",
				  .detail = rc ? "rejected: quarantined" :
						 "incoming, without a request" };

	if (audit_log_write(fs->audit, &ev) != 0)
		log_warnx("audit: cannot record the ingest of %s", path);
}

/* An expired call was removed: the kernel may still hold pages of its
 * recording (keep_cache); drop them. */
static void fs_gone(void *ctx, const struct call_record *rec)
{
	struct fs *fs = ctx;
	struct tree_node n = { .kind = TREE_OPUS, .num = rec->num };

	fuse_lowlevel_notify_inval_inode(fs->se, tree_ino(&n), 0, 0);
	n.kind = TREE_JSON;
	fuse_lowlevel_notify_inval_inode(fs->se, tree_ino(&n), 0, 0);
	n.kind = TREE_ENC_BLOB;
	fuse_lowlevel_notify_inval_inode(fs->se, tree_ino(&n), 0, 0);
}

static void *fs_maintenance(void *arg)
{
	struct fs *fs = arg;
	const struct config *cfg = vault_config(fs->v);
	int64_t grace_ms = (int64_t)cfg->grace_period_s * 1000;
	int64_t sweep_ms = (int64_t)cfg->sweep_interval_s * 1000;
	int64_t last_sweep = 0;
	int period = cfg->grace_period_s / 4;
	struct timespec until;

	if (period > cfg->sweep_interval_s)
		period = cfg->sweep_interval_s;
	if (period < 1)
		period = 1;
	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		int64_t now;

		pthread_mutex_unlock(&fs->lock);
		now = clock_now_ms();
		/* Also at start: expiries while the mount was down are made
		 * final at once. A clock that jumps back sweeps again. */
		if (now - last_sweep >= sweep_ms || now < last_sweep) {
			struct retention_stats st = { 0 };
			retention_sweep(fs->v, now, fs_gone, fs, &st);
			log_debug("sweep: %u expired calls removed, %u day keys "
				  "destroyed", st.calls, st.keys);
			fs_notify_status(fs, "");
			last_sweep = now;
		}
		incoming_sweep(fs->in, now, grace_ms, fs_report, fs);
		pthread_mutex_lock(&fs->lock);
		if (fs->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period;
		pthread_cond_timedwait(&fs->wake, &fs->lock, &until);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* SIGHUP (systemctl reload): re-reads VAULT/callvault.conf. Only the log
 * level changes at run time; other changes are named, with when they take
 * effect. A file that does not load changes nothing. */
static void fs_reload(struct fs *fs)
{
	const struct config *old = vault_config(fs->v);
	struct config cfg;
	char path[4096], err[256] = "";
	int rc, changed = 0;

	snprintf(path, sizeof path, "%s", vault_config_path(fs->v));
	rc = config_load(&cfg, path, err, sizeof err);
	if (rc) {
		log_warnx("reload: %s; nothing changed",
			  *err ? err : strerror(rc));
		return;
	}
#define FS_RELOAD_NEXT_MOUNT(cond, key)                                 \
	do {                                                            \
		if (cond) {                                             \
			log_info("reload: " key " changed: takes effect " \
				 "at the next mount");                  \
			changed = 1;                                    \
		}                                                       \
	} while (0)
	FS_RELOAD_NEXT_MOUNT(strcmp(cfg.timezone, old->timezone) != 0,
			     "timezone");
	FS_RELOAD_NEXT_MOUNT(cfg.retention_months != old->retention_months,
			     "retention_months");
	FS_RELOAD_NEXT_MOUNT(cfg.bitrate != old->bitrate, "bitrate");
	FS_RELOAD_NEXT_MOUNT(cfg.complexity != old->complexity, "complexity");
	FS_RELOAD_NEXT_MOUNT(strcmp(cfg.country_code, old->country_code) != 0,
			     "country_code");
	FS_RELOAD_NEXT_MOUNT(strcmp(cfg.trunk_prefix, old->trunk_prefix) != 0,
			     "trunk_prefix");
	FS_RELOAD_NEXT_MOUNT(cfg.grace_period_s != old->grace_period_s,
			     "grace_period");
	FS_RELOAD_NEXT_MOUNT(cfg.sweep_interval_s != old->sweep_interval_s,
			     "sweep_interval");
	FS_RELOAD_NEXT_MOUNT(cfg.cipher != old->cipher, "cipher");
#undef FS_RELOAD_NEXT_MOUNT
	if (cfg.log_level != fs->log_level) {
		/* Said at the more verbose of the two levels, so that the
		 * line is seen either way. */
		if (cfg.log_level > fs->log_level)
			log_set_level((enum log_level)cfg.log_level);
		log_info("reload: log_level %s -> %s",
			 config_log_level_name(fs->log_level),
			 config_log_level_name(cfg.log_level));
		log_set_level((enum log_level)cfg.log_level);
		fs->log_level = cfg.log_level;
		changed = 1;
	}
	if (!changed)
		log_info("reload: nothing changed");
}

static void *fs_signals(void *arg)
{
	struct fs *fs = arg;
	sigset_t set;
	int sig, stop;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		pthread_mutex_lock(&fs->lock);
		stop = fs->stopping;
		pthread_mutex_unlock(&fs->lock);
		if (stop)
			break;
		notify_send("RELOADING=1");
		fs_reload(fs);
		fs_notify_status(fs, "READY=1\n");
	}
	return NULL;
}

static void fs_audit_mount(struct fs *fs, const char *action,
			   const char *mountpoint)
{
	struct audit_event ev = { .uid = (uint32_t)getuid(),
				  .login = "",
				  .action = action,
				  .outcome = "ok",
				  .detail = mountpoint };

	if (audit_log_write(fs->audit, &ev) != 0)
		log_warnx("audit: cannot record the %s", action);
}

int fs_main(struct vault *v, const char *mountpoint,
	    const struct fs_options *opt)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config loop = { .clone_fd = 1,
					 .max_idle_threads = 16 };
	struct fs fs;
	char fsname[512];
	int rc = 1, mounted = 0, handlers = 0;

	memset(&fs, 0, sizeof fs);
	fs.v = v;
	fs.mounted_ms = clock_now_ms();
	fs.grants_version = -1;
	pthread_cond_init(&fs.wake, NULL);
	pthread_mutex_init(&fs.lock, NULL);

	snprintf(fsname, sizeof fsname, "-ofsname=callvault:%s,subtype=callvault",
		 vault_dir(v));
	if (fuse_opt_add_arg(&args, "callvault") ||
	    fuse_opt_add_arg(&args, fsname) ||
	    (opt->allow_other && fuse_opt_add_arg(&args, "-oallow_other")) ||
	    (opt->debug && fuse_opt_add_arg(&args, "-odebug"))) {
		log_err("out of memory");
		goto out;
	}
	se = fuse_session_new(&args, &cv_ops, sizeof cv_ops, &fs);
	if (!se) {
		log_err("cannot create the FUSE session");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		log_err("cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	/* SIGHUP reloads instead of ending the session: blocked here, before
	 * any thread of the mount exists, so that only fs_signals takes it.
	 * It stays blocked until the process exits. */
	{
		sigset_t hup;
		sigemptyset(&hup);
		sigaddset(&hup, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &hup, NULL);
	}
	if (store_claim_spool(vault_store(v)) != 0) {
		log_err("%s: the vault is already mounted elsewhere",
			vault_dir(v));
		goto out;
	}
	/* Before the mount: afterwards, resolving the mount point would be a
	 * request to this process, which does not answer yet. */
	fs.mountpoint = realpath(mountpoint, NULL);
	if (fuse_session_mount(se, mountpoint) != 0) {
		log_err("%s: cannot mount", mountpoint);
		goto out;
	}
	mounted = 1;
	if (fuse_daemonize(opt->foreground || opt->debug) != 0) {
		log_err("cannot go to the background");
		goto out;
	}
	fs.log_level = opt->debug ? LOG_LEVEL_DEBUG :
				    vault_config(v)->log_level;
	if (!opt->foreground && !opt->debug)
		log_init("callvault", 1, (enum log_level)fs.log_level);
	else
		log_set_level((enum log_level)fs.log_level);
	/* After daemonizing: the writer is a thread, and threads do not
	 * survive fork(). */
	if (audit_log_start(vault_catalog_path(v), vault_keys(v),
			    &fs.audit) != 0) {
		log_err("cannot start the audit trail writer");
		goto out;
	}
	if (incoming_new(v, &fs.in) != 0) {
		log_err("cannot set up incoming/");
		goto out;
	}
	if (snapshot_cache_new(vault_dir(v), vault_keys(v),
			       SNAPSHOT_INTERVAL_S, &fs.snap) != 0) {
		log_err("cannot set up encrypted/");
		goto out;
	}
	fs_audit_mount(&fs, "mount", mountpoint);
	{
		unsigned recovered = 0, quarantined = 0;
		int rc2 = incoming_recover(fs.in, fs_report, &fs, &recovered,
					   &quarantined);
		if (rc2)
			log_warnx("incoming: recovery: %s", strerror(rc2));
		if (recovered || quarantined)
			log_info("incoming: %u pending files recovered after a "
				 "crash, %u quarantined", recovered,
				 quarantined);
	}
	fs.se = se;
	if (pthread_create(&fs.maint, NULL, fs_maintenance, &fs) != 0) {
		log_err("cannot start the maintenance thread");
		goto out;
	}
	fs.maint_running = 1;
	if (pthread_create(&fs.sig, NULL, fs_signals, &fs) != 0) {
		log_err("cannot start the signal thread");
		goto out;
	}
	fs.sig_running = 1;
	if (opt->single_thread)
		rc = fuse_session_loop(se);
	else
		rc = fuse_session_loop_mt(se, &loop);
	rc = rc < 0 ? 1 : 0;
	notify_send("STOPPING=1");
	log_info("stopping: every request in flight has been answered");
	fs_audit_mount(&fs, "unmount", mountpoint);
out:
	pthread_mutex_lock(&fs.lock);
	fs.stopping = 1;
	pthread_cond_signal(&fs.wake);
	pthread_mutex_unlock(&fs.lock);
	if (fs.maint_running)
		pthread_join(fs.maint, NULL);
	if (fs.sig_running) {
		pthread_kill(fs.sig, SIGHUP);
		pthread_join(fs.sig, NULL);
	}
	audit_log_stop(fs.audit);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	for (size_t i = 0; i < PRINCIPAL_CACHE; i++)
		if (fs.cache[i].used)
			policy_release(&fs.cache[i].p);
	while (fs.files) {
		struct fs_file *f = fs.files;
		fs.files = f->next;
		file_free(&fs, f);
	}
	incoming_free(fs.in);
	snapshot_cache_free(fs.snap);
	free(fs.mountpoint);
	pthread_cond_destroy(&fs.wake);
	pthread_mutex_destroy(&fs.lock);
	return rc;
}
