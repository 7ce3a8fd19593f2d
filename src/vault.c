/* Opening and creating vaults. */
#include "callvault/vault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callvault/blob.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/snapshot.h"

#define CATALOG_FILE "catalog.db"
#define CONFIG_FILE "callvault.conf"

struct vault {
	char *dir;
	char *catalog_path;
	char *erasure_log;   /* beside the key file */
	char *config_path;
	int flags;
	struct config cfg;
	unsigned blob_alg;   /* what new recordings are sealed with */
	struct keyring *ring;
	struct store *store;
	pthread_key_t tls;   /* this thread's struct catalog * */
	int tls_made;
};

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

char *vault_default_key_path(const char *vault_dir)
{
	size_t len = strlen(vault_dir);
	char *p = NULL;

	while (len > 1 && vault_dir[len - 1] == '/')
		len--;
	if (asprintf(&p, "%.*s.key", (int)len, vault_dir) < 0)
		return NULL;
	return p;
}

/* 1 if `path` (which need not exist) would lie inside directory `dir`. */
static int path_inside(const char *path, const char *dir)
{
	char rdir[PATH_MAX], rparent[PATH_MAX], parent[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!realpath(dir, rdir))
		return 0;
	if (!slash)
		snprintf(parent, sizeof parent, ".");
	else if (slash == path)
		snprintf(parent, sizeof parent, "/");
	else
		snprintf(parent, sizeof parent, "%.*s", (int)(slash - path),
			 path);
	if (!realpath(parent, rparent))
		return 0;
	n = strlen(rdir);
	return strncmp(rparent, rdir, n) == 0 &&
	       (rparent[n] == '\0' || rparent[n] == '/');
}

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		err = errno;
	close(fd);
	return err;
}

int vault_create(const char *dir, const char *key_file, const char *passphrase,
		 char *err, size_t errlen)
{
	unsigned char master[KEYS_KEY_LEN], check[KEYS_CHECK_LEN];
	struct keyring *ring = NULL;
	struct config cfg;
	char *key_path = NULL, *cat = NULL, *conf = NULL;
	int rc, made_key = 0, made_dir = 0;

	if (mkdir(dir, 0700) == 0) {
		made_dir = 1;
	} else if (errno != EEXIST) {
		rc = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(rc));
		return rc;
	} else {
		int e = dir_is_empty(dir);
		if (e != 1) {
			rc = e < 0 ? errno : ENOTEMPTY;
			snprintf(err, errlen, "%s: %s", dir,
				 e < 0 ? strerror(rc) :
					 "not empty; refusing to create a vault here");
			return rc;
		}
	}

	key_path = key_file ? strdup(key_file) : vault_default_key_path(dir);
	cat = path_join(dir, CATALOG_FILE);
	conf = path_join(dir, CONFIG_FILE);
	if (!key_path || !cat || !conf) {
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (path_inside(key_path, dir)) {
		rc = EINVAL;
		snprintf(err, errlen,
			 "%s: the key must not be inside the vault directory",
			 key_path);
		goto out;
	}

	/* An existing key file given with --key-file is used as it is, so
	 * that an operator can create the key first (or share one); the
	 * default key is always new. */
	if (key_file && access(key_file, F_OK) == 0) {
		rc = keys_file_read(key_file, passphrase, master, err, errlen);
		if (rc)
			goto out;
	} else {
		keys_random(master, sizeof master);
		rc = keys_file_write(key_path, master, passphrase);
		if (rc) {
			snprintf(err, errlen, "%s: %s", key_path,
				 rc == EEXIST ? "key file already exists" :
						strerror(rc));
			goto out;
		}
		made_key = 1;
	}
	rc = keys_ring_new(master, &ring);
	explicit_bzero(master, sizeof master);
	if (rc) {
		snprintf(err, errlen, "cannot set up keys: %s", strerror(rc));
		goto out;
	}
	keys_check_value(ring, check);

	config_defaults(&cfg);
	rc = config_write(&cfg, conf);
	if (rc) {
		snprintf(err, errlen, "%s: %s", conf, strerror(rc));
		goto out;
	}
	rc = store_create(dir);
	if (rc) {
		snprintf(err, errlen, "%s: cannot create the blob store: %s",
			 dir, strerror(rc));
		goto out;
	}
	rc = catalog_create(cat, ring);
	if (rc) {
		snprintf(err, errlen, "%s: cannot create the catalog: %s", cat,
			 strerror(rc));
		goto out;
	}
	rc = fsync_path(dir);
	if (rc)
		snprintf(err, errlen, "%s: fsync: %s", dir, strerror(rc));

out:
	if (rc && made_key)
		unlink(key_path);
	if (rc && made_dir) {
		/* Leave nothing half-made behind in a directory we created. */
		char cmdpath[PATH_MAX];
		const char *sub[] = { "blobs", "spool", "quarantine" };
		for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
			snprintf(cmdpath, sizeof cmdpath, "%s/%s", dir, sub[i]);
			rmdir(cmdpath);
		}
		if (cat)
			unlink(cat);
		if (conf)
			unlink(conf);
		rmdir(dir);
	}
	keys_ring_free(ring);
	free(key_path);
	free(cat);
	free(conf);
	return rc;
}

/* Reads the key file and builds the keyring, with a reason in err. */
/* The cipher of new recordings: what callvault.conf asks for, or for auto
 * AES-256-GCM where the CPU runs it (1.5x XChaCha20-Poly1305's speed here,
 * docs/performance.md). Asking for AES-256-GCM on a CPU without it is an
 * error, not a silent change of cipher. */
static int resolve_cipher(struct vault *v, char *err, size_t errlen)
{
	switch (v->cfg.cipher) {
	case CONFIG_CIPHER_XCHACHA20POLY1305:
		v->blob_alg = BLOB_ALG_XCHACHA20POLY1305;
		return 0;
	case CONFIG_CIPHER_AES256GCM:
		if (!blob_alg_available(BLOB_ALG_AES256GCM)) {
			snprintf(err, errlen, "%s: cipher = aes256gcm, but "
				 "this CPU has no AES-NI and PCLMUL",
				 v->config_path);
			return ENOTSUP;
		}
		v->blob_alg = BLOB_ALG_AES256GCM;
		return 0;
	}
	v->blob_alg = blob_alg_available(BLOB_ALG_AES256GCM) ?
			      BLOB_ALG_AES256GCM :
			      BLOB_ALG_XCHACHA20POLY1305;
	return 0;
}

static int load_ring(const char *key_path, struct keyring **ring, char *err,
		     size_t errlen)
{
	unsigned char master[KEYS_KEY_LEN];
	int rc;

	rc = keys_file_read(key_path, NULL, master, err, errlen);
	if (rc) {
		if (rc != EINVAL && rc != EACCES)
			snprintf(err, errlen, "%s: cannot read the key: %s",
				 key_path, strerror(rc));
		return rc;
	}
	rc = keys_ring_new(master, ring);
	explicit_bzero(master, sizeof master);
	if (rc)
		snprintf(err, errlen, "cannot set up keys: %s", strerror(rc));
	return rc;
}

/* --- preparing a rebuild ---------------------------------------------- */

/* Moves DIR/NAME (and its -wal, -shm) aside as NAME.damaged-<ms>. */
static int move_aside(const char *dir, const char *name, int64_t now_ms)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char from[PATH_MAX], to[PATH_MAX];

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(from, sizeof from, "%s/%s%s", dir, name, sfx[i]);
		snprintf(to, sizeof to, "%s/%s.damaged-%" PRId64 "%s", dir,
			 name, now_ms, sfx[i]);
		if (rename(from, to) != 0 && errno != ENOENT)
			return errno;
	}
	return fsync_path(dir);
}

/* The snapshot a rebuild starts from: one restored from a backup of
 * encrypted/ (VAULT/catalog.snapshot), else the last one a mount made. */
static char *find_snapshot(const char *dir)
{
	char *p = path_join(dir, SNAPSHOT_NAME);

	if (p && access(p, F_OK) == 0)
		return p;
	free(p);
	p = path_join(dir, "snapshot/" SNAPSHOT_NAME);
	if (p && access(p, F_OK) == 0)
		return p;
	free(p);
	return NULL;
}

/* Puts the parts of snapshot `snap` that DIR lacks into DIR: through a
 * staging directory, then one rename per file. `catalog_only_missing`: the
 * key store present in DIR is kept (it may be newer than the snapshot). */
static int restore_parts(const char *dir, const char *snap,
			 const struct keyring *ring, unsigned *restored,
			 char *err, size_t errlen)
{
	static const enum snapshot_part parts[] = {
		SNAPSHOT_KEYSTORE, SNAPSHOT_CONFIG, SNAPSHOT_CATALOG,
	};
	char stage[PATH_MAX], from[PATH_MAX + NAME_MAX + 2],
	     to[PATH_MAX + NAME_MAX + 2];
	int rc;

	*restored = 0;
	snprintf(stage, sizeof stage, "%s/.rebuild-XXXXXX", dir);
	if (!mkdtemp(stage)) {
		rc = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(rc));
		return rc;
	}
	rc = snapshot_read(snap, ring, stage);
	if (rc) {
		snprintf(err, errlen, "%s: %s", snap,
			 rc == EBADMSG ? "does not authenticate (damaged or "
					 "altered)" :
			 rc == EACCES ? "made with another key" : strerror(rc));
		goto out;
	}
	/* The catalog last: once it is in place the vault opens. */
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		const char *name = snapshot_part_file(parts[i]);

		snprintf(from, sizeof from, "%s/%s", stage, name);
		snprintf(to, sizeof to, "%s/%s", dir, name);
		if (access(from, F_OK) != 0 || access(to, F_OK) == 0)
			continue;
		if (rename(from, to) != 0) {
			rc = errno;
			snprintf(err, errlen, "%s: %s", to, strerror(rc));
			goto out;
		}
		(*restored) |= 1u << parts[i];
	}
	rc = fsync_path(dir);
out:
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		snprintf(from, sizeof from, "%s/%s", stage,
			 snapshot_part_file(parts[i]));
		unlink(from);
	}
	rmdir(stage);
	return rc;
}

int vault_prepare_rebuild(const char *dir, const char *key_file,
			  unsigned *what, char *err, size_t errlen)
{
	unsigned char check[KEYS_CHECK_LEN];
	struct keyring *ring = NULL;
	struct catalog *c = NULL;
	char *real = NULL, *key_path = NULL, *cat = NULL, *ks = NULL,
	     *conf = NULL, *snap = NULL;
	unsigned restored = 0;
	int rc;

	*what = 0;
	real = realpath(dir, NULL);
	if (!real) {
		rc = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(rc));
		return rc;
	}
	key_path = key_file ? strdup(key_file) : vault_default_key_path(real);
	cat = path_join(real, CATALOG_FILE);
	ks = path_join(real, "keystore.db");
	conf = path_join(real, CONFIG_FILE);
	if (!key_path || !cat || !ks || !conf) {
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = load_ring(key_path, &ring, err, errlen);
	if (rc)
		goto out;
	keys_check_value(ring, check);
	/* A backup holds blobs only: spool/ and quarantine/ are made anew
	 * (store_create keeps what exists). */
	rc = store_create(real);
	if (rc) {
		snprintf(err, errlen, "%s: %s", real, strerror(rc));
		goto out;
	}

	/* A catalog that opens with its key store and passes the check is
	 * kept; one that does not is moved aside, never deleted. */
	if (access(cat, F_OK) == 0) {
		rc = catalog_open_keyed(cat, 0, ring, &c);
		if (!rc)
			rc = catalog_integrity_check(c);
		catalog_close(c);
		if (rc == ENOENT && access(ks, F_OK) != 0) {
			rc = 0; /* the key store is missing, see below */
		} else if (rc) {
			log_warnx("%s: does not open (%s): moved aside", cat,
				  strerror(rc));
			rc = move_aside(real, CATALOG_FILE, clock_now_ms());
			if (rc) {
				snprintf(err, errlen, "%s: cannot move it "
					 "aside: %s", cat, strerror(rc));
				goto out;
			}
			*what |= VAULT_REBUILD_DAMAGED;
		}
	}
	if (access(cat, F_OK) != 0 || access(ks, F_OK) != 0 ||
	    access(conf, F_OK) != 0) {
		snap = find_snapshot(real);
		if (snap) {
			rc = restore_parts(real, snap, ring, &restored, err,
					   errlen);
			if (rc)
				goto out;
			if (restored)
				*what |= VAULT_REBUILD_FROM_SNAPSHOT;
		}
	}
	if (access(ks, F_OK) != 0 && access(cat, F_OK) == 0) {
		rc = ENOENT;
		snprintf(err, errlen, "%s is missing and no snapshot has it: "
			 "the keys of every call are lost", ks);
		goto out;
	}
	if (access(conf, F_OK) != 0) {
		struct config cfg;

		/* Defaults, said loudly: retention and time zone matter. */
		config_defaults(&cfg);
		rc = config_write(&cfg, conf);
		if (rc) {
			snprintf(err, errlen, "%s: %s", conf, strerror(rc));
			goto out;
		}
		*what |= VAULT_REBUILD_DEFAULT_CONFIG;
	}
	if (access(cat, F_OK) != 0) {
		/* An empty catalog beside the existing key store (which
		 * must belong to this key). */
		rc = catalog_create(cat, ring);
		if (rc) {
			snprintf(err, errlen, "%s: cannot create: %s%s", cat,
				 strerror(rc), rc == EINVAL ?
				 " (the key store belongs to another key?)" :
				 "");
			goto out;
		}
		*what |= VAULT_REBUILD_NEW_CATALOG;
	}
	rc = 0;
out:
	keys_ring_free(ring);
	free(real);
	free(key_path);
	free(cat);
	free(ks);
	free(conf);
	free(snap);
	return rc;
}

static void tls_close(void *p)
{
	catalog_close(p);
}

int vault_open(const char *dir, const char *key_file, int flags,
	       struct vault **out, char *err, size_t errlen)
{
	return vault_open_config(dir, key_file, NULL, flags, out, err, errlen);
}

int vault_open_config(const char *dir, const char *key_file,
		      const char *config_file, int flags, struct vault **out,
		      char *err, size_t errlen)
{
	unsigned char want[KEYS_CHECK_LEN], have[KEYS_CHECK_LEN];
	struct vault *v;
	struct catalog *c = NULL;
	struct stat st;
	char *key_path = NULL, *conf = NULL;
	int rc;

	*out = NULL;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = errno ? errno : ENOTDIR;
		snprintf(err, errlen, "%s: not a vault directory", dir);
		return rc;
	}
	v = calloc(1, sizeof *v);
	if (!v)
		return ENOMEM;
	v->flags = flags;
	/* Absolute: the daemon changes its working directory to / . */
	v->dir = realpath(dir, NULL);
	if (!v->dir) {
		rc = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(rc));
		goto out;
	}
	v->catalog_path = path_join(v->dir, CATALOG_FILE);
	conf = config_file ? strdup(config_file) :
			     path_join(v->dir, CONFIG_FILE);
	key_path = key_file ? strdup(key_file) : vault_default_key_path(v->dir);
	if (!v->catalog_path || !conf || !key_path) {
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* A missing VAULT/callvault.conf means the defaults; a file named
	 * with --config must exist. */
	if (config_file && access(config_file, R_OK) != 0) {
		rc = errno;
		snprintf(err, errlen, "%s: %s", config_file, strerror(rc));
		goto out;
	}
	if (access(v->catalog_path, F_OK) != 0) {
		rc = ENOENT;
		snprintf(err, errlen, "%s: not a vault (no %s)", dir,
			 CATALOG_FILE);
		goto out;
	}
	rc = config_load(&v->cfg, conf, err, errlen);
	v->config_path = conf;
	conf = NULL;
	if (rc)
		goto out;
	rc = clock_set_timezone(v->cfg.timezone);
	if (rc) {
		snprintf(err, errlen, "%s: unknown time zone \"%s\"",
			 v->config_path, v->cfg.timezone);
		goto out;
	}
	rc = resolve_cipher(v, err, errlen);
	if (rc)
		goto out;

	if (asprintf(&v->erasure_log, "%s" VAULT_ERASURE_LOG_SUFFIX,
		     key_path) < 0) {
		v->erasure_log = NULL;
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = load_ring(key_path, &v->ring, err, errlen);
	if (rc)
		goto out;

	/* Prove the key before anything else touches the vault. The
	 * connection is not kept: the daemon may fork after this. */
	rc = catalog_open_keyed(v->catalog_path,
				v->flags & VAULT_READONLY ? CATALOG_READONLY : 0,
				v->ring, &c);
	if (!rc)
		rc = catalog_key_check(c, want);
	catalog_close(c);
	if (rc == EACCES) {
		snprintf(err, errlen, "%s: wrong key for vault %s", key_path,
			 dir);
		goto out;
	}
	if (rc) {
		snprintf(err, errlen, "%s: cannot read the catalog: %s",
			 v->catalog_path, strerror(rc));
		goto out;
	}
	keys_check_value(v->ring, have);
	if (!keys_check_equal(want, have)) {
		rc = EACCES;
		snprintf(err, errlen, "%s: wrong key for vault %s", key_path,
			 dir);
		goto out;
	}

	rc = store_open(v->dir, &v->store);
	if (rc) {
		snprintf(err, errlen, "%s: cannot open the blob store: %s",
			 dir, strerror(rc));
		goto out;
	}
	rc = pthread_key_create(&v->tls, tls_close);
	if (rc)
		goto out;
	v->tls_made = 1;
	*out = v;
	v = NULL;
out:
	vault_close(v);
	free(conf);
	free(key_path);
	return rc;
}

void vault_close(struct vault *v)
{
	if (!v)
		return;
	if (v->tls_made) {
		struct catalog *c = pthread_getspecific(v->tls);
		catalog_close(c);
		pthread_setspecific(v->tls, NULL);
		pthread_key_delete(v->tls);
	}
	store_close(v->store);
	keys_ring_free(v->ring);
	free(v->erasure_log);
	free(v->config_path);
	free(v->catalog_path);
	free(v->dir);
	free(v);
}

const char *vault_dir(const struct vault *v)
{
	return v->dir;
}

const char *vault_config_path(const struct vault *v)
{
	return v->config_path;
}

const char *vault_erasure_log(const struct vault *v)
{
	return v->erasure_log;
}

const char *vault_catalog_path(const struct vault *v)
{
	return v->catalog_path;
}

unsigned vault_blob_alg(const struct vault *v)
{
	return v->blob_alg;
}

const struct config *vault_config(const struct vault *v)
{
	return &v->cfg;
}

const struct keyring *vault_keys(const struct vault *v)
{
	return v->ring;
}

struct store *vault_store(struct vault *v)
{
	return v->store;
}

struct catalog *vault_catalog(struct vault *v)
{
	struct catalog *c = pthread_getspecific(v->tls);
	int rc;

	if (c)
		return c;
	rc = catalog_open_keyed(v->catalog_path,
				v->flags & VAULT_READONLY ? CATALOG_READONLY : 0,
				v->ring, &c);
	if (rc) {
		log_warnx("%s: cannot open the catalog: %s", v->catalog_path,
			  strerror(rc));
		return NULL;
	}
	pthread_setspecific(v->tls, c);
	return c;
}

int vault_call_key(struct vault *v, const struct call_record *rec,
		   struct secret *out)
{
	unsigned char wrapped[KEYS_WRAPPED_LEN];
	struct catalog *c = vault_catalog(v);
	struct keys_node node;
	int32_t day;
	int rc;

	if (!c)
		return EIO;
	/* A key of its own (restricted call) outlives the day's tree. */
	rc = catalog_call_key_get(c, rec->num, &day, wrapped);
	if (rc == 0) {
		rc = keys_call_unwrap(v->ring, day, rec->num, wrapped, out);
		if (rc == EBADMSG)
			log_warnx("the key of c-%06" PRIu64 " does not "
				  "authenticate", rec->num);
		return rc;
	}
	if (rc != ENOENT)
		return rc;
	rc = catalog_epoch_node(c, rec->day, rec->num, &node);
	if (rc)
		return rc;
	rc = keys_call_key(v->ring, rec->day, &node, rec->num, out);
	if (rc == EBADMSG || rc == EINVAL)
		log_warnx("the key tree of day %d does not authenticate",
			  (int)rec->day);
	return rc == EINVAL ? EBADMSG : rc;
}

int vault_call_key_new(struct vault *v, struct catalog *c,
		       const struct call_record *rec, struct secret *out)
{
	struct keys_node root;
	int rc;

	rc = catalog_epoch_node(c, rec->day, rec->num, &root);
	if (rc == ENOENT) {
		/* The day's first call: a new tree, unless another ingest
		 * stored one first. */
		rc = keys_epoch_new(v->ring, rec->day, &root);
		if (!rc)
			rc = catalog_epoch_ensure(c, rec->day, &root);
		if (!rc)
			rc = catalog_epoch_node(c, rec->day, rec->num, &root);
	}
	if (rc)
		return rc;
	return keys_call_key(v->ring, rec->day, &root, rec->num, out);
}

/* Each thread keeps one guarded key buffer for vault_blob_open(), wiped
 * after every use and freed when the thread exits: a sodium_malloc() and
 * sodium_free() per open of a recording cost more than deriving its key. */
static pthread_key_t open_key_tls;
static pthread_once_t open_key_once = PTHREAD_ONCE_INIT;
static int open_key_ok;

static void open_key_free(void *p)
{
	struct secret s = { p };

	keys_secret_free(&s);
}

static void open_key_init(void)
{
	open_key_ok = pthread_key_create(&open_key_tls, open_key_free) == 0;
}

/* The calling thread's key buffer; .b NULL on ENOMEM. *owned: the caller
 * frees it (no thread-local storage). */
static struct secret open_key_get(int *owned)
{
	struct secret s = { NULL };

	*owned = 0;
	pthread_once(&open_key_once, open_key_init);
	if (open_key_ok)
		s.b = pthread_getspecific(open_key_tls);
	if (s.b)
		return s;
	s = keys_secret_new();
	if (s.b && open_key_ok &&
	    pthread_setspecific(open_key_tls, s.b) == 0)
		return s;
	*owned = 1;
	return s;
}

int vault_blob_open(struct vault *v, const struct call_record *rec,
		    struct blob_reader **out)
{
	int owned, fd = -1, rc;
	struct secret key = open_key_get(&owned);

	*out = NULL;
	if (!key.b)
		return ENOMEM;
	rc = vault_call_key(v, rec, &key);
	if (rc)
		goto out;
	rc = store_blob_open(v->store, rec->day, rec->num, &fd);
	if (rc)
		goto out;
	rc = blob_open(fd, key.b, out, NULL, NULL); /* takes fd */
out:
	explicit_bzero(key.b, KEYS_KEY_LEN);
	if (owned)
		keys_secret_free(&key);
	return rc;
}
