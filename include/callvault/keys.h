/* Key hierarchy (docs/format.md has the full picture):
 *
 *   master key (32 bytes, in VAULT.key, raw or wrapped by a passphrase
 *   through Argon2id)
 *     -> subkeys derived with crypto_kdf (context "cvmaster"):
 *          wrap (epoch keys), number hash, key check, audit, snapshot,
 *          catalog MAC
 *     -> one random epoch key per local calendar day: the root of a binary
 *        tree of keys (a GGM tree) over the 48-bit call numbers. A node's
 *        children are crypto_kdf(node, subkey id = 0 or 1, "cvtree01");
 *        the leaf at depth 48 for call number n is that call's key.
 *        Nodes are stored in the key store only wrapped (XChaCha20-Poly1305,
 *        wrap subkey, AD = day, depth, first call number).
 *     -> a restricted call's key may also be wrapped on its own, so that it
 *        outlives its day's tree.
 *
 * Destroying a day's nodes makes every blob of that day, and every copy of
 * it, undecryptable by the live system. Erasing one call "punctures" the
 * tree: its covering node is replaced by the siblings along the path to its
 * leaf, which derive every other call of the day but not that one, so that
 * its key is destroyed while its day lives on.
 *
 * All secret material lives in sodium_malloc()ed memory. Functions return 0
 * or a positive errno. */
#ifndef CALLVAULT_KEYS_H
#define CALLVAULT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_KEY_LEN 32
#define KEYS_NONCE_LEN 24
#define KEYS_TAG_LEN 16
/* nonce + sealed 32-byte key + tag */
#define KEYS_WRAPPED_LEN (KEYS_NONCE_LEN + KEYS_KEY_LEN + KEYS_TAG_LEN)
#define KEYS_CHECK_LEN 32
/* Overhead of keys_seal(): nonce in front, tag behind. */
#define KEYS_SEAL_OVERHEAD (KEYS_NONCE_LEN + KEYS_TAG_LEN)

/* The master key and the subkeys derived from it, locked in memory and
 * read-only once built. */
struct keyring;

/* A 32-byte secret in guarded memory (sodium_malloc). */
struct secret {
	unsigned char *b;
};

/* sodium_init(); call once before anything else here. Returns 0 or EIO. */
int keys_init(void);

struct secret keys_secret_new(void); /* .b == NULL on ENOMEM */
void keys_secret_free(struct secret *s); /* wipes; NULL-safe; idempotent */

/* Fills `master` (32 bytes) with random bytes. */
void keys_random(unsigned char *buf, size_t len);

/* Writes a key file with O_EXCL and mode 0400. With a NULL passphrase the
 * file holds the raw 32 bytes; otherwise a passphrase-wrapped form
 * ("CVKEY1", Argon2id salt and limits, sealed key). */
int keys_file_write(const char *path, const unsigned char master[KEYS_KEY_LEN],
		    const char *passphrase);

/* Reads a key file. If it is passphrase-wrapped, the passphrase comes from
 * `passphrase`, else from $CALLVAULT_PASSPHRASE, else from /dev/tty.
 * EACCES for a wrong passphrase, EINVAL for a malformed file (with a reason
 * in err), other errnos from the file system. */
int keys_file_read(const char *path, const char *passphrase,
		   unsigned char master[KEYS_KEY_LEN], char *err, size_t errlen);

/* Builds the keyring from a master key (copied; wipe yours afterwards). */
int keys_ring_new(const unsigned char master[KEYS_KEY_LEN],
		  struct keyring **out);
void keys_ring_free(struct keyring *ring);

/* A value stored in the vault that proves a keyring belongs to it without
 * revealing anything about the key. Compare with keys_check_equal(). */
void keys_check_value(const struct keyring *ring,
		      unsigned char out[KEYS_CHECK_LEN]);
int keys_check_equal(const unsigned char a[KEYS_CHECK_LEN],
		     const unsigned char b[KEYS_CHECK_LEN]);

/* Call numbers are the leaves of a day's key tree. */
#define KEYS_TREE_DEPTH 48
#define KEYS_CALL_NUM_MAX ((UINT64_C(1) << KEYS_TREE_DEPTH) - 1)

/* A node of a day's key tree, wrapped. It covers the call numbers
 * [lo, lo + 2^(KEYS_TREE_DEPTH - depth)); depth 0 is the root (every
 * number), depth KEYS_TREE_DEPTH one call. */
struct keys_node {
	uint64_t lo;
	int depth;
	unsigned char wrapped[KEYS_WRAPPED_LEN];
};

/* Makes a new random root (epoch key) for `day`, wrapped. */
int keys_epoch_new(const struct keyring *ring, int32_t day,
		   struct keys_node *root);

/* Derives the key of call `num` from the node of its day that covers it.
 * EINVAL if the node does not cover `num`; EBADMSG if the node does not
 * authenticate (wrong master key, another day's or position's node, a
 * tampered key store). `out` must be a keys_secret_new() secret. */
int keys_call_key(const struct keyring *ring, int32_t day,
		  const struct keys_node *node, uint64_t num,
		  struct secret *out);

/* Punctures `node` at `num`: fills `out` with the nodes (one per level
 * below `node`, at most KEYS_TREE_DEPTH) that together cover every number
 * `node` covers except `num`. Replacing `node` by them destroys the key of
 * `num` and keeps every other key of the day. */
int keys_puncture(const struct keyring *ring, int32_t day,
		  const struct keys_node *node, uint64_t num,
		  struct keys_node out[KEYS_TREE_DEPTH], size_t *nout);

/* A call key wrapped on its own (AD = day and call number), for calls that
 * must outlive their day's tree (restriction). unwrap: EBADMSG on any
 * mismatch. */
int keys_call_wrap(const struct keyring *ring, int32_t day, uint64_t num,
		   const struct secret *key,
		   unsigned char wrapped[KEYS_WRAPPED_LEN]);
int keys_call_unwrap(const struct keyring *ring, int32_t day, uint64_t num,
		     const unsigned char wrapped[KEYS_WRAPPED_LEN],
		     struct secret *out);

/* Keyed BLAKE2b-256 of a normalised E.164 number, the subject index. */
void keys_number_hash(const struct keyring *ring, const char *e164,
		      unsigned char out[32]);

/* Keyed BLAKE2b-256 over the concatenation of `n` parts, for records that
 * authenticate themselves (the audit chain, catalog rows). Parts are
 * length-prefixed inside the hash, so ("ab","c") and ("a","bc") differ. */
struct keys_part {
	const void *p;
	size_t len;
};
void keys_mac(const unsigned char key[KEYS_KEY_LEN],
	      const struct keys_part *parts, size_t n,
	      unsigned char out[32]);
int keys_mac_equal(const unsigned char a[32], const unsigned char b[32]);

/* Authenticated encryption of small values (the masked digits, spool
 * records): out = nonce || ciphertext || tag, out_len = len +
 * KEYS_SEAL_OVERHEAD. keys_open returns EBADMSG on any mismatch. */
int keys_seal(const unsigned char key[KEYS_KEY_LEN], const void *ad,
	      size_t ad_len, const void *in, size_t len, unsigned char *out);
int keys_open(const unsigned char key[KEYS_KEY_LEN], const void *ad,
	      size_t ad_len, const unsigned char *in, size_t in_len,
	      void *out);

/* Subkeys for the modules that authenticate their own records (audit
 * chain head, backup snapshot, catalog rows). Read-only pointers into the
 * keyring's guarded memory. */
enum keys_purpose {
	KEYS_AUDIT = 1,
	KEYS_SNAPSHOT = 2,
	KEYS_CATALOG_MAC = 3,
	KEYS_SPOOL = 4,
};
const unsigned char *keys_subkey(const struct keyring *ring,
				 enum keys_purpose purpose);

/* The key of one spool file: keyed BLAKE2b-256 (key = spool subkey) of
 * "cvspool1" || id, where `id` is the file's random 16-byte id. Every spool
 * file has its own key, and the next mount re-derives it from the master key
 * to recover a spool left by a crash. `out` must be a keys_secret_new()
 * secret; EINVAL otherwise. */
int keys_spool_key(const struct keyring *ring, const unsigned char id[16],
		   struct secret *out);

#endif
