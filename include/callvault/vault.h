/* A vault: one directory holding the catalog, the blob store and the
 * configuration, and the master key file beside it (VAULT.key), never
 * inside. vault_open() proves the key belongs to the vault before anything
 * else is touched. Functions return 0 or a positive errno; errors that a
 * user must see come with a one-line reason in err. */
#ifndef CALLVAULT_VAULT_H
#define CALLVAULT_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/blob.h"
#include "callvault/call.h"
#include "callvault/catalog.h"
#include "callvault/config.h"
#include "callvault/keys.h"
#include "callvault/store.h"

struct vault;

/* Where the key of `vault_dir` is by default: "DIR.key" beside it. Returns
 * a malloc()ed path or NULL. */
char *vault_default_key_path(const char *vault_dir);

/* Creates a vault in `dir` (created if missing; refused unless empty) and a
 * new random master key in `key_file` (NULL: the default path), written
 * 0400 with O_EXCL, wrapped by `passphrase` if not NULL. Refuses a key path
 * inside the vault. */
int vault_create(const char *dir, const char *key_file, const char *passphrase,
		 char *err, size_t errlen);

#define VAULT_READONLY 1

/* Opens an existing vault: reads its configuration and the key (NULL: the
 * default path), and checks the key against the vault's key check value.
 * EACCES "wrong key" if it does not match. */
int vault_open(const char *dir, const char *key_file, int flags,
	       struct vault **out, char *err, size_t errlen);
/* The same with the configuration read from `config_file` instead of
 * VAULT/callvault.conf (NULL: that one). */
int vault_open_config(const char *dir, const char *key_file,
		      const char *config_file, int flags, struct vault **out,
		      char *err, size_t errlen);
void vault_close(struct vault *v);

const char *vault_dir(const struct vault *v);
const char *vault_catalog_path(const struct vault *v);
/* The configuration file the vault was opened with (SIGHUP re-reads it). */
const char *vault_config_path(const struct vault *v);
/* The erasure log: KEYFILE.erased, beside the key and so outside the
 * vault directory and its backups (rights.h). */
#define VAULT_ERASURE_LOG_SUFFIX ".erased"
const char *vault_erasure_log(const struct vault *v);
const struct config *vault_config(const struct vault *v);

/* BLOB_ALG_* that new recordings are sealed with (callvault.conf's
 * cipher, resolved for this CPU). */
unsigned vault_blob_alg(const struct vault *v);
const struct keyring *vault_keys(const struct vault *v);
struct store *vault_store(struct vault *v);

/* The calling thread's catalog connection, opened on first use and closed
 * when the thread exits or the vault is closed. NULL on failure (logged). */
struct catalog *vault_catalog(struct vault *v);

/* The key of a call: its own wrapped key if it has one (restricted), else
 * derived from the node of its day's key tree that covers it. ENOENT if
 * the key is gone (expired, erased), EBADMSG if it does not authenticate. */
int vault_call_key(struct vault *v, const struct call_record *rec,
		   struct secret *out);

/* The key of a new call `rec` (day and number set), for ingest: creates
 * the day's key tree on its first call. Uses connection `c`. ENOENT if the
 * day's tree no longer covers the number (cannot happen for a number from
 * catalog_call_num_next). */
int vault_call_key_new(struct vault *v, struct catalog *c,
		       const struct call_record *rec, struct secret *out);

/* Makes a vault directory openable for `rebuild`, before vault_open():
 * a catalog that does not open or fails SQLite's integrity check is moved aside
 * (catalog.db.damaged-<ms>); what is missing of catalog.db, keystore.db
 * and callvault.conf is taken from the vault's snapshot (VAULT/catalog.
 * snapshot from a restored backup of encrypted/, else the mount's last
 * one in VAULT/snapshot/); a catalog still missing is created empty beside
 * the key store; a configuration still missing is written with defaults.
 * *what gets VAULT_REBUILD_* bits. ENOENT if the key store is lost with no
 * snapshot to restore it from. */
#define VAULT_REBUILD_DAMAGED 1u         /* catalog moved aside */
#define VAULT_REBUILD_FROM_SNAPSHOT 2u   /* parts restored from a snapshot */
#define VAULT_REBUILD_NEW_CATALOG 4u     /* empty catalog created */
#define VAULT_REBUILD_DEFAULT_CONFIG 8u  /* configuration written anew */
int vault_prepare_rebuild(const char *dir, const char *key_file,
			  unsigned *what, char *err, size_t errlen);

/* Opens the blob of a call for reading (blob_open with its call key). */
int vault_blob_open(struct vault *v, const struct call_record *rec,
		    struct blob_reader **out);

#endif
