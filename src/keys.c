/* The key hierarchy: master key files, the keyring of subkeys, per-day key
 * trees (derivation and puncturing), call keys wrapped on their own, the
 * number hash and small sealed values. docs/format.md describes every
 * byte. */
#include "callvault/bytes.h"
#include "callvault/fdio.h"
#include "callvault/keys.h"
#include "callvault/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* Subkey ids under the master key (context "cvmaster"). Never renumber:
 * they are part of the on-disk format. */
enum {
	SUB_WRAP = 1,
	SUB_NUMBER_HASH = 2,
	SUB_CHECK = 3,
	SUB_AUDIT = 4,
	SUB_SNAPSHOT = 5,
	SUB_CATALOG_MAC = 6,
	SUB_SPOOL = 7,
	SUB_COUNT = 7,
};

#define MASTER_CTX "cvmaster"
#define TREE_CTX "cvtree01"
#define CHECK_LABEL "callvault key check v1"
#define NODE_AD_MAGIC "cvnode01"
#define NODE_AD_LEN 21
#define CALL_WRAP_AD_MAGIC "cvcallk1"
#define CALL_WRAP_AD_LEN 20
#define SPOOL_LABEL "cvspool1"
#define SPOOL_LABEL_LEN 8
#define SPOOL_ID_LEN 16

_Static_assert(sizeof(MASTER_CTX) - 1 == crypto_kdf_CONTEXTBYTES,
	       "kdf context is 8 bytes");
_Static_assert(sizeof(TREE_CTX) - 1 == crypto_kdf_CONTEXTBYTES,
	       "kdf context is 8 bytes");
_Static_assert(KEYS_KEY_LEN == crypto_kdf_KEYBYTES, "master key size");
_Static_assert(KEYS_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "aead key size");
_Static_assert(KEYS_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "aead nonce size");
_Static_assert(KEYS_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "aead tag size");

/* Passphrase key file (all integers little-endian):
 *   0  magic "CVKEY1"      6
 *   6  version (1)         1
 *   7  kdf (1 = Argon2id13) 1
 *   8  opslimit            8
 *  16  memlimit            8
 *  24  salt               16
 *  40  nonce              24
 *  64  sealed master      32 + 16 tag, AD = bytes 0..63
 * 112  end */
#define KF_MAGIC "CVKEY1"
#define KF_MAGIC_LEN 6
#define KF_VERSION 1
#define KF_KDF_ARGON2ID13 1
#define KF_HEADER_LEN 64
#define KF_LEN (KF_HEADER_LEN + KEYS_KEY_LEN + KEYS_TAG_LEN)
#define KF_PASS_MAX 1024
/* Refuse limits a tampered file could use to exhaust the machine. */
#define KF_OPS_MAX 64ULL
#define KF_MEM_MAX (4ULL << 30)

_Static_assert(crypto_pwhash_SALTBYTES == 16, "salt size in key file");

struct keyring {
	unsigned char master[KEYS_KEY_LEN];
	unsigned char sub[SUB_COUNT][KEYS_KEY_LEN]; /* sub[id - 1] */
};

int keys_init(void)
{
	return sodium_init() < 0 ? EIO : 0;
}

struct secret keys_secret_new(void)
{
	struct secret s = { sodium_malloc(KEYS_KEY_LEN) };
	return s;
}

void keys_secret_free(struct secret *s)
{
	if (!s || !s->b)
		return;
	sodium_free(s->b);
	s->b = NULL;
}

void keys_random(unsigned char *buf, size_t len)
{
	randombytes_buf(buf, len);
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/* Reads at most `cap` bytes; *got < cap means end of file was reached. */
static int read_upto(int fd, unsigned char *p, size_t cap, size_t *got)
{
	*got = 0;
	while (*got < cap) {
		ssize_t n = read(fd, p + *got, cap - *got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/* Derives the key that seals the master from a passphrase, with the limits
 * and salt stored in the file header. */
static int kf_derive(unsigned char *key, const char *pass, size_t pass_len,
		     const unsigned char hdr[KF_HEADER_LEN])
{
	uint64_t ops = le64_get(hdr + 8), mem = le64_get(hdr + 16);

	if (crypto_pwhash(key, KEYS_KEY_LEN, pass, pass_len, hdr + 24, ops,
			  (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return ENOMEM;
	return 0;
}

int keys_file_write(const char *path, const unsigned char master[KEYS_KEY_LEN],
		    const char *passphrase)
{
	unsigned char file[KF_LEN];
	unsigned char *key = NULL;
	size_t len = KEYS_KEY_LEN;
	int fd = -1, err = 0;

	if (passphrase && passphrase[0] == '\0')
		return EINVAL;
	if (!passphrase) {
		memcpy(file, master, KEYS_KEY_LEN);
	} else {
		key = sodium_malloc(KEYS_KEY_LEN);
		if (!key)
			return ENOMEM;
		memset(file, 0, sizeof file);
		memcpy(file, KF_MAGIC, KF_MAGIC_LEN);
		file[6] = KF_VERSION;
		file[7] = KF_KDF_ARGON2ID13;
		le64_put(file + 8, crypto_pwhash_OPSLIMIT_MODERATE);
		le64_put(file + 16, crypto_pwhash_MEMLIMIT_MODERATE);
		randombytes_buf(file + 24, crypto_pwhash_SALTBYTES);
		randombytes_buf(file + 40, KEYS_NONCE_LEN);
		err = kf_derive(key, passphrase, strlen(passphrase), file);
		if (err)
			goto out;
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			file + KF_HEADER_LEN, NULL, master, KEYS_KEY_LEN, file,
			KF_HEADER_LEN, NULL, file + 40, key);
		len = KF_LEN;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	err = fdio_write_all(fd, file, len);
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	/* A half-written key file must not be mistaken for a key later. */
	if (err)
		unlink(path);
out:
	sodium_memzero(file, sizeof file);
	sodium_free(key);
	return err;
}

/* Reads a passphrase from the controlling terminal with echo off into
 * `buf` (guarded memory of KF_PASS_MAX bytes). */
static int read_tty_passphrase(const char *path, char *buf)
{
	struct termios old, noecho;
	size_t n = 0;
	int fd, err = 0, restore = 0;
	char prompt[512];

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return EINVAL;
	if (tcgetattr(fd, &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		noecho.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
			restore = 1;
	}
	snprintf(prompt, sizeof prompt, "Passphrase for %s: ", path);
	(void)fdio_write_all(fd, (const unsigned char *)prompt, strlen(prompt));
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || ch == '\n' || ch == '\r')
			break;
		if (n + 1 >= KF_PASS_MAX) {
			err = EINVAL;
			break;
		}
		buf[n++] = ch;
	}
	buf[n] = '\0';
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	(void)fdio_write_all(fd, (const unsigned char *)"\n", 1);
	close(fd);
	if (!err && n == 0)
		err = EINVAL;
	return err;
}

static int kf_unwrap(const char *path, const unsigned char file[KF_LEN],
		     const char *passphrase, unsigned char master[KEYS_KEY_LEN],
		     char *err, size_t errlen)
{
	uint64_t ops = le64_get(file + 8), mem = le64_get(file + 16);
	unsigned char *key = NULL;
	char *pass = NULL;
	const char *src = passphrase;
	int rc = 0;

	if (file[6] != KF_VERSION || file[7] != KF_KDF_ARGON2ID13) {
		set_err(err, errlen, "unsupported key file version");
		return EINVAL;
	}
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > KF_OPS_MAX ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > KF_MEM_MAX) {
		set_err(err, errlen,
			"key file has unsupported Argon2id limits");
		return EINVAL;
	}
	pass = sodium_malloc(KF_PASS_MAX);
	key = sodium_malloc(KEYS_KEY_LEN);
	if (!pass || !key) {
		rc = ENOMEM;
		goto out;
	}
	if (!src)
		src = getenv("CALLVAULT_PASSPHRASE");
	if (src) {
		if (strlen(src) >= KF_PASS_MAX) {
			set_err(err, errlen, "passphrase too long");
			rc = EINVAL;
			goto out;
		}
		memcpy(pass, src, strlen(src) + 1);
	} else if (read_tty_passphrase(path, pass) != 0) {
		set_err(err, errlen, "key file needs a passphrase");
		rc = EINVAL;
		goto out;
	}
	rc = kf_derive(key, pass, strlen(pass), file);
	if (rc) {
		set_err(err, errlen,
			"out of memory deriving the passphrase key");
		goto out;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    master, NULL, NULL, file + KF_HEADER_LEN,
		    KEYS_KEY_LEN + KEYS_TAG_LEN, file, KF_HEADER_LEN, file + 40,
		    key) != 0) {
		set_err(err, errlen, "wrong passphrase");
		rc = EACCES;
	}
out:
	if (pass)
		sodium_free(pass);
	sodium_free(key);
	return rc;
}

int keys_file_read(const char *path, const char *passphrase,
		   unsigned char master[KEYS_KEY_LEN], char *err, size_t errlen)
{
	unsigned char file[KF_LEN + 1];
	struct stat st;
	size_t got;
	int fd, rc;

	set_err(err, errlen, "");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = errno;
		set_err(err, errlen, strerror(rc));
		return rc;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		log_warnx("key file %s is readable by group or others; "
			  "chmod 0400 it", path);
	rc = read_upto(fd, file, sizeof file, &got);
	close(fd);
	if (rc) {
		set_err(err, errlen, strerror(rc));
		goto out;
	}
	if (got == KEYS_KEY_LEN) {
		memcpy(master, file, KEYS_KEY_LEN);
	} else if (got == KF_LEN && memcmp(file, KF_MAGIC, KF_MAGIC_LEN) == 0) {
		rc = kf_unwrap(path, file, passphrase, master, err, errlen);
	} else {
		set_err(err, errlen, "key file must be 32 bytes or a "
				     "callvault passphrase file");
		rc = EINVAL;
	}
out:
	sodium_memzero(file, sizeof file);
	return rc;
}

int keys_ring_new(const unsigned char master[KEYS_KEY_LEN],
		  struct keyring **out)
{
	struct keyring *ring = sodium_malloc(sizeof *ring);

	*out = NULL;
	if (!ring)
		return ENOMEM;
	memcpy(ring->master, master, KEYS_KEY_LEN);
	for (int id = 1; id <= SUB_COUNT; id++)
		crypto_kdf_derive_from_key(ring->sub[id - 1], KEYS_KEY_LEN,
					   (uint64_t)id, MASTER_CTX,
					   ring->master);
	sodium_mprotect_readonly(ring);
	*out = ring;
	return 0;
}

void keys_ring_free(struct keyring *ring)
{
	if (ring)
		sodium_free(ring); /* makes it writable again and wipes */
}

static const unsigned char *sub(const struct keyring *ring, int id)
{
	return ring->sub[id - 1];
}

void keys_check_value(const struct keyring *ring,
		      unsigned char out[KEYS_CHECK_LEN])
{
	crypto_generichash(out, KEYS_CHECK_LEN,
			   (const unsigned char *)CHECK_LABEL,
			   sizeof(CHECK_LABEL) - 1, sub(ring, SUB_CHECK),
			   KEYS_KEY_LEN);
}

int keys_check_equal(const unsigned char a[KEYS_CHECK_LEN],
		     const unsigned char b[KEYS_CHECK_LEN])
{
	return sodium_memcmp(a, b, KEYS_CHECK_LEN) == 0;
}

/* AD of a wrapped tree node: magic, day, depth, first call number. */
static void node_ad(int32_t day, const struct keys_node *n,
		    unsigned char ad[NODE_AD_LEN])
{
	memcpy(ad, NODE_AD_MAGIC, 8);
	le32_put(ad + 8, (uint32_t)day);
	ad[12] = (unsigned char)n->depth;
	le64_put(ad + 13, n->lo);
}

/* 1 if node `n` is well formed and covers call number `num`. */
static int node_covers(const struct keys_node *n, uint64_t num)
{
	unsigned shift;

	if (n->depth < 0 || n->depth > KEYS_TREE_DEPTH ||
	    num > KEYS_CALL_NUM_MAX)
		return 0;
	shift = (unsigned)(KEYS_TREE_DEPTH - n->depth);
	return n->lo >> shift << shift == n->lo && num >> shift == n->lo >> shift;
}

static void node_wrap(const struct keyring *ring, int32_t day,
		      struct keys_node *n, const unsigned char seed[KEYS_KEY_LEN])
{
	unsigned char ad[NODE_AD_LEN];

	node_ad(day, n, ad);
	randombytes_buf(n->wrapped, KEYS_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		n->wrapped + KEYS_NONCE_LEN, NULL, seed, KEYS_KEY_LEN, ad,
		sizeof ad, NULL, n->wrapped, sub(ring, SUB_WRAP));
}

static int node_unwrap(const struct keyring *ring, int32_t day,
		       const struct keys_node *n, unsigned char *seed)
{
	unsigned char ad[NODE_AD_LEN];

	node_ad(day, n, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    seed, NULL, NULL, n->wrapped + KEYS_NONCE_LEN,
		    KEYS_KEY_LEN + KEYS_TAG_LEN, ad, sizeof ad, n->wrapped,
		    sub(ring, SUB_WRAP)) != 0)
		return EBADMSG;
	return 0;
}

/* The bit of `num` that chooses the child below depth `d`. */
static unsigned path_bit(uint64_t num, int d)
{
	return (unsigned)(num >> (KEYS_TREE_DEPTH - 1 - d)) & 1;
}

/* seed := its child `bit`. `tmp` is guarded scratch of KEYS_KEY_LEN. */
static void tree_child(unsigned char *seed, unsigned bit, unsigned char *tmp)
{
	crypto_kdf_derive_from_key(tmp, KEYS_KEY_LEN, bit, TREE_CTX, seed);
	memcpy(seed, tmp, KEYS_KEY_LEN);
}

int keys_epoch_new(const struct keyring *ring, int32_t day,
		   struct keys_node *root)
{
	struct secret seed = keys_secret_new();

	if (!seed.b)
		return ENOMEM;
	root->lo = 0;
	root->depth = 0;
	randombytes_buf(seed.b, KEYS_KEY_LEN);
	node_wrap(ring, day, root, seed.b);
	keys_secret_free(&seed);
	return 0;
}

int keys_call_key(const struct keyring *ring, int32_t day,
		  const struct keys_node *node, uint64_t num,
		  struct secret *out)
{
	struct secret tmp = keys_secret_new();
	int err;

	if (!out || !out->b || !node_covers(node, num)) {
		err = EINVAL;
		goto out;
	}
	if (!tmp.b) {
		err = ENOMEM;
		goto out;
	}
	err = node_unwrap(ring, day, node, out->b);
	for (int d = node->depth; !err && d < KEYS_TREE_DEPTH; d++)
		tree_child(out->b, path_bit(num, d), tmp.b);
	if (err)
		sodium_memzero(out->b, KEYS_KEY_LEN);
out:
	keys_secret_free(&tmp);
	return err;
}

int keys_puncture(const struct keyring *ring, int32_t day,
		  const struct keys_node *node, uint64_t num,
		  struct keys_node out[KEYS_TREE_DEPTH], size_t *nout)
{
	struct secret seed = keys_secret_new(), sib = keys_secret_new(),
		      tmp = keys_secret_new();
	size_t n = 0;
	int err;

	*nout = 0;
	if (!node_covers(node, num)) {
		err = EINVAL;
		goto out;
	}
	if (!seed.b || !sib.b || !tmp.b) {
		err = ENOMEM;
		goto out;
	}
	err = node_unwrap(ring, day, node, seed.b);
	for (int d = node->depth; !err && d < KEYS_TREE_DEPTH; d++) {
		unsigned bit = path_bit(num, d), shift;

		/* The sibling at depth d + 1 covers the half of this node
		 * that `num` is not in. */
		memcpy(sib.b, seed.b, KEYS_KEY_LEN);
		tree_child(sib.b, bit ^ 1, tmp.b);
		shift = (unsigned)(KEYS_TREE_DEPTH - 1 - d);
		out[n].depth = d + 1;
		out[n].lo = ((num >> shift) ^ 1) << shift;
		node_wrap(ring, day, &out[n], sib.b);
		n++;
		tree_child(seed.b, bit, tmp.b);
	}
	if (!err)
		*nout = n;
out:
	keys_secret_free(&seed);
	keys_secret_free(&sib);
	keys_secret_free(&tmp);
	return err;
}

static void call_wrap_ad(int32_t day, uint64_t num,
			 unsigned char ad[CALL_WRAP_AD_LEN])
{
	memcpy(ad, CALL_WRAP_AD_MAGIC, 8);
	le32_put(ad + 8, (uint32_t)day);
	le64_put(ad + 12, num);
}

int keys_call_wrap(const struct keyring *ring, int32_t day, uint64_t num,
		   const struct secret *key,
		   unsigned char wrapped[KEYS_WRAPPED_LEN])
{
	unsigned char ad[CALL_WRAP_AD_LEN];

	if (!key || !key->b)
		return EINVAL;
	call_wrap_ad(day, num, ad);
	randombytes_buf(wrapped, KEYS_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		wrapped + KEYS_NONCE_LEN, NULL, key->b, KEYS_KEY_LEN, ad,
		sizeof ad, NULL, wrapped, sub(ring, SUB_WRAP));
	return 0;
}

int keys_call_unwrap(const struct keyring *ring, int32_t day, uint64_t num,
		     const unsigned char wrapped[KEYS_WRAPPED_LEN],
		     struct secret *out)
{
	unsigned char ad[CALL_WRAP_AD_LEN];

	if (!out || !out->b)
		return EINVAL;
	call_wrap_ad(day, num, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    out->b, NULL, NULL, wrapped + KEYS_NONCE_LEN,
		    KEYS_KEY_LEN + KEYS_TAG_LEN, ad, sizeof ad, wrapped,
		    sub(ring, SUB_WRAP)) != 0) {
		sodium_memzero(out->b, KEYS_KEY_LEN);
		return EBADMSG;
	}
	return 0;
}

void keys_number_hash(const struct keyring *ring, const char *e164,
		      unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)e164, strlen(e164),
			   sub(ring, SUB_NUMBER_HASH), KEYS_KEY_LEN);
}

void keys_mac(const unsigned char key[KEYS_KEY_LEN],
	      const struct keys_part *parts, size_t n, unsigned char out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, KEYS_KEY_LEN, 32);
	for (size_t i = 0; i < n; i++) {
		unsigned char len[8];
		uint64_t l = parts[i].len;
		for (int b = 0; b < 8; b++)
			len[b] = (unsigned char)(l >> (8 * b));
		crypto_generichash_update(&st, len, sizeof len);
		crypto_generichash_update(&st, parts[i].p, parts[i].len);
	}
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof st);
}

int keys_mac_equal(const unsigned char a[32], const unsigned char b[32])
{
	return sodium_memcmp(a, b, 32) == 0;
}

int keys_seal(const unsigned char key[KEYS_KEY_LEN], const void *ad,
	      size_t ad_len, const void *in, size_t len, unsigned char *out)
{
	randombytes_buf(out, KEYS_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + KEYS_NONCE_LEN, NULL, in, len, ad, ad_len, NULL, out,
		key);
	return 0;
}

int keys_open(const unsigned char key[KEYS_KEY_LEN], const void *ad,
	      size_t ad_len, const unsigned char *in, size_t in_len,
	      void *out)
{
	if (in_len < KEYS_SEAL_OVERHEAD)
		return EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    out, NULL, NULL, in + KEYS_NONCE_LEN,
		    in_len - KEYS_NONCE_LEN, ad, ad_len, in, key) != 0)
		return EBADMSG;
	return 0;
}

const unsigned char *keys_subkey(const struct keyring *ring,
				 enum keys_purpose purpose)
{
	switch (purpose) {
	case KEYS_AUDIT:
		return sub(ring, SUB_AUDIT);
	case KEYS_SNAPSHOT:
		return sub(ring, SUB_SNAPSHOT);
	case KEYS_CATALOG_MAC:
		return sub(ring, SUB_CATALOG_MAC);
	case KEYS_SPOOL:
		return sub(ring, SUB_SPOOL);
	}
	return NULL;
}

int keys_spool_key(const struct keyring *ring, const unsigned char id[16],
		   struct secret *out)
{
	unsigned char in[SPOOL_LABEL_LEN + SPOOL_ID_LEN];

	if (!ring || !id || !out || !out->b)
		return EINVAL;
	memcpy(in, SPOOL_LABEL, SPOOL_LABEL_LEN);
	memcpy(in + SPOOL_LABEL_LEN, id, SPOOL_ID_LEN);
	crypto_generichash(out->b, KEYS_KEY_LEN, in, sizeof in,
			   sub(ring, SUB_SPOOL), KEYS_KEY_LEN);
	return 0;
}
