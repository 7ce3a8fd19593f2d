/* The encrypted container of one call, format version 1 (docs/format.md).
 *
 *   header   64 bytes, authenticated as AD by every chunk and the trailer
 *   chunks   AEAD(plaintext chunk) || tag, n = max(1, ceil); the AEAD is
 *            the header's algorithm: XChaCha20-Poly1305 (1) or, where the
 *            CPU has AES-NI and PCLMUL, AES-256-GCM (2, 1.5x faster here)
 *   trailer  sealed metadata || tag, le64 plain size, le32 meta length,
 *            8-byte footer magic
 *
 * The reader decrypts only the chunks a read touches and keeps the last
 * partially read chunk in a small cache, so sequential small reads do not
 * decrypt a chunk many times. */
#include "callvault/fdio.h"
#include "callvault/bytes.h"
#include "callvault/blob.h"
#include "callvault/log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR_MAGIC "CVBLOB\r\n"
#define FOOTER_MAGIC "CVBEND\r\n"
#define MAGIC_LEN 8
#define KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
/* The header's base nonce; AES-256-GCM uses its first 12 bytes. */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define FOOTER_LEN 20 /* le64 plain size, le32 meta length, magic */
#define CHUNK_AD_LEN (BLOB_HEADER_LEN + 9)
#define TRAILER_AD_LEN (BLOB_HEADER_LEN + 12)
/* The trailer's nonce index: never a chunk index. */
#define TRAILER_INDEX UINT64_MAX
/* Bounds a reader accepts, so a hostile header cannot make it allocate
 * without limit. Writers always use BLOB_CHUNK_SIZE. */
#define CHUNK_MIN 1024u
#define CHUNK_MAX (16u << 20)
#define META_MAX (16u << 20)
#define PLAIN_MAX (UINT64_C(1) << 56)

/* Header offsets. */
#define H_MAGIC 0
#define H_VERSION 8
#define H_ALG 10
#define H_CHUNK 12
#define H_CALL 16
#define H_DAY 24
#define H_NONCE 28
#define H_RESERVED 52

_Static_assert(H_RESERVED + 12 == BLOB_HEADER_LEN, "header layout");
_Static_assert(NONCE_LEN == 24 && TAG_LEN == 16 && KEY_LEN == 32,
	       "XChaCha20-Poly1305 sizes");
_Static_assert(crypto_aead_aes256gcm_NPUBBYTES == 12 &&
		       crypto_aead_aes256gcm_ABYTES == TAG_LEN &&
		       crypto_aead_aes256gcm_KEYBYTES == KEY_LEN,
	       "AES-256-GCM sizes");

struct blob_writer {
	int fd;                  /* not owned */
	unsigned alg;            /* BLOB_ALG_* */
	unsigned char *key;      /* guarded */
	unsigned char hdr[BLOB_HEADER_LEN];
	unsigned char *buf;      /* guarded; one chunk of plaintext + tag */
	size_t fill;             /* plaintext bytes in buf */
	uint64_t index;          /* index of the chunk in buf */
	uint64_t plain_size;
	uint64_t file_size;      /* bytes written so far */
	int err;                 /* sticky: a failed writer stays failed */
	int finished;
};

struct blob_reader {
	int fd;
	unsigned char *mem;      /* guarded: the chunk cache, then the key */
	unsigned char *key;      /* in mem */
	unsigned char hdr[BLOB_HEADER_LEN];
	unsigned alg;            /* BLOB_ALG_* */
	uint64_t call_num;
	uint32_t chunk_size;
	uint64_t plain_size;
	uint64_t nchunks;
	atomic_int warned;       /* one log line per reader is enough */
	pthread_mutex_t lock;
	unsigned char *cache;    /* in mem; protected by lock */
	uint64_t cache_idx;      /* protected by lock; UINT64_MAX = empty */
	struct blob_reader *next; /* on the free list */
};

/* Whole chunks a read decrypts straight into the caller's buffer are read
 * with one preadv (data and tag of each), at most this many at a time. */
#define BATCH_CHUNKS 16

/* Readers of BLOB_CHUNK_SIZE blobs (all that writers make) are kept on a
 * short free list after blob_close(), wiped, with their guarded memory:
 * sodium_malloc() and sodium_free() cost an mmap, three mprotects, mlock,
 * munlock and an munmap (whose TLB shootdown stalls every thread of the
 * mount), which was about 30% of an open of a recording. POOL_MAX idle
 * readers hold POOL_MAX * 68 KiB of locked memory at most. */
#define POOL_MAX 16
#define MEM_LEN(chunk) ((size_t)(chunk) + KEY_LEN)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blob_reader *pool;     /* protected by pool_lock */
static unsigned pool_len;            /* protected by pool_lock */

/* What blob_peek() learns, plus what the reader needs. */
struct layout {
	struct blob_info info;
	unsigned char hdr[BLOB_HEADER_LEN];
	uint32_t meta_len;
	uint64_t nchunks;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/* Asked at every open: sodium_init() takes a global lock each time, so
 * the answer is kept. */
static pthread_once_t aes_once = PTHREAD_ONCE_INIT;
static int aes_ok;

static void aes_probe(void)
{
	/* sodium_init() detects the CPU's features. */
	aes_ok = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

int blob_alg_available(unsigned alg)
{
	if (alg == BLOB_ALG_XCHACHA20POLY1305)
		return 1;
	if (alg == BLOB_ALG_AES256GCM) {
		pthread_once(&aes_once, aes_probe);
		return aes_ok;
	}
	return 0;
}

const char *blob_alg_name(unsigned alg)
{
	switch (alg) {
	case BLOB_ALG_XCHACHA20POLY1305:
		return "XChaCha20-Poly1305";
	case BLOB_ALG_AES256GCM:
		return "AES-256-GCM";
	}
	return "unknown";
}

/* Seals m (may be c) into c and tag under the blob's algorithm; nonce is
 * the 24-byte nonce of nonce_for(), of which AES-256-GCM takes 12. */
static void aead_seal(unsigned alg, unsigned char *c, unsigned char *tag,
		      const unsigned char *m, size_t mlen,
		      const unsigned char *ad, size_t adlen,
		      const unsigned char nonce[NONCE_LEN],
		      const unsigned char *key)
{
	if (alg == BLOB_ALG_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached(c, tag, NULL, m, mlen,
						       ad, adlen, NULL, nonce,
						       key);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			c, tag, NULL, m, mlen, ad, adlen, NULL, nonce, key);
}

/* Opens c (may be m) with its tag into m: 0, or -1 if it does not
 * authenticate. */
static int aead_open(unsigned alg, unsigned char *m, const unsigned char *c,
		     size_t clen, const unsigned char *tag,
		     const unsigned char *ad, size_t adlen,
		     const unsigned char nonce[NONCE_LEN],
		     const unsigned char *key)
{
	if (alg == BLOB_ALG_AES256GCM)
		return crypto_aead_aes256gcm_decrypt_detached(
			m, NULL, c, clen, tag, ad, adlen, nonce, key);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		m, NULL, c, clen, tag, ad, adlen, nonce, key);
}

/* The nonce of chunk `index`: the base nonce with its first 8 bytes XORed
 * with le64(index). */
static void nonce_for(const unsigned char hdr[BLOB_HEADER_LEN],
		      uint64_t index, unsigned char nonce[NONCE_LEN])
{
	unsigned char ix[8];

	memcpy(nonce, hdr + H_NONCE, NONCE_LEN);
	le64_put(ix, index);
	for (int i = 0; i < 8; i++)
		nonce[i] ^= ix[i];
}

static void chunk_ad(const unsigned char hdr[BLOB_HEADER_LEN],
		     uint64_t index, int last, unsigned char ad[CHUNK_AD_LEN])
{
	memcpy(ad, hdr, BLOB_HEADER_LEN);
	le64_put(ad + BLOB_HEADER_LEN, index);
	ad[BLOB_HEADER_LEN + 8] = last ? 1 : 0;
}

static void trailer_ad(const unsigned char hdr[BLOB_HEADER_LEN],
		       uint64_t plain_size, uint32_t meta_len,
		       unsigned char ad[TRAILER_AD_LEN])
{
	memcpy(ad, hdr, BLOB_HEADER_LEN);
	le64_put(ad + BLOB_HEADER_LEN, plain_size);
	le32_put(ad + BLOB_HEADER_LEN + 8, meta_len);
}

static uint64_t chunk_count(uint64_t plain_size, uint32_t chunk_size)
{
	if (plain_size == 0)
		return 1;
	return (plain_size - 1) / chunk_size + 1;
}

/* Plaintext length of chunk i. */
static size_t chunk_len(uint64_t plain_size, uint32_t chunk_size,
			uint64_t nchunks, uint64_t i)
{
	if (i + 1 < nchunks)
		return chunk_size;
	return (size_t)(plain_size - i * chunk_size);
}

static uint64_t chunk_offset(uint32_t chunk_size, uint64_t i)
{
	return BLOB_HEADER_LEN + i * ((uint64_t)chunk_size + TAG_LEN);
}

static int read_layout(int fd, struct layout *l, char *err, size_t errlen)
{
	unsigned char foot[FOOTER_LEN];
	const unsigned char *h;
	struct stat st;
	uint64_t expect;
	int rc;

	memset(l, 0, sizeof *l);
	h = l->hdr;
	set_err(err, errlen, "");
	if (fstat(fd, &st) != 0) {
		rc = errno;
		set_err(err, errlen, strerror(rc));
		return rc;
	}
	l->info.file_size = (uint64_t)st.st_size;
	if (!S_ISREG(st.st_mode) ||
	    l->info.file_size < BLOB_HEADER_LEN + 2 * TAG_LEN + FOOTER_LEN) {
		set_err(err, errlen, "too short to be a callvault blob");
		return EINVAL;
	}
	rc = fdio_pread_all(fd, l->hdr, BLOB_HEADER_LEN, 0);
	if (!rc)
		rc = fdio_pread_all(fd, foot, FOOTER_LEN,
			       l->info.file_size - FOOTER_LEN);
	if (rc) {
		set_err(err, errlen, strerror(rc));
		return rc;
	}
	if (memcmp(h + H_MAGIC, HDR_MAGIC, MAGIC_LEN) != 0) {
		set_err(err, errlen, "not a callvault blob (bad magic)");
		return EINVAL;
	}
	l->info.version = le16_get(h + H_VERSION);
	if (l->info.version != BLOB_VERSION) {
		set_err(err, errlen, "unsupported blob version");
		return EINVAL;
	}
	l->info.alg = le16_get(h + H_ALG);
	if (l->info.alg != BLOB_ALG_XCHACHA20POLY1305 &&
	    l->info.alg != BLOB_ALG_AES256GCM) {
		set_err(err, errlen, "unsupported blob algorithm");
		return EINVAL;
	}
	l->info.chunk_size = le32_get(h + H_CHUNK);
	if (l->info.chunk_size < CHUNK_MIN || l->info.chunk_size > CHUNK_MAX) {
		set_err(err, errlen, "unsupported blob chunk size");
		return EINVAL;
	}
	l->info.call_num = le64_get(h + H_CALL);
	l->info.day = (int32_t)le32_get(h + H_DAY);
	for (int i = H_RESERVED; i < BLOB_HEADER_LEN; i++) {
		if (h[i] != 0) {
			set_err(err, errlen,
				"blob header reserved bytes not zero");
			return EINVAL;
		}
	}
	if (memcmp(foot + 12, FOOTER_MAGIC, MAGIC_LEN) != 0) {
		set_err(err, errlen, "blob has no footer (truncated?)");
		return EINVAL;
	}
	l->info.plain_size = le64_get(foot);
	l->meta_len = le32_get(foot + 8);
	if (l->info.plain_size > PLAIN_MAX || l->meta_len > META_MAX) {
		set_err(err, errlen, "blob footer sizes out of range");
		return EINVAL;
	}
	l->nchunks = chunk_count(l->info.plain_size, l->info.chunk_size);
	expect = BLOB_HEADER_LEN + l->info.plain_size + l->nchunks * TAG_LEN +
		 l->meta_len + TAG_LEN + FOOTER_LEN;
	if (expect != l->info.file_size) {
		set_err(err, errlen,
			"blob size does not match its footer (truncated or "
			"extended)");
		return EINVAL;
	}
	return 0;
}

int blob_peek(int fd, struct blob_info *info, char *err, size_t errlen)
{
	struct layout l;
	int rc = read_layout(fd, &l, err, errlen);

	if (!rc)
		*info = l.info;
	return rc;
}

/* ---- writer ---- */

int blob_writer_new(int fd, const unsigned char key[32], uint64_t num,
		    int32_t day, unsigned alg, struct blob_writer **out)
{
	struct blob_writer *w;
	int err;

	*out = NULL;
	if (!blob_alg_available(alg))
		return ENOTSUP;
	w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->fd = fd;
	w->alg = alg;
	w->key = sodium_malloc(KEY_LEN);
	w->buf = sodium_malloc(BLOB_CHUNK_SIZE + TAG_LEN);
	if (!w->key || !w->buf) {
		err = ENOMEM;
		goto fail;
	}
	memcpy(w->key, key, KEY_LEN);
	memcpy(w->hdr + H_MAGIC, HDR_MAGIC, MAGIC_LEN);
	le16_put(w->hdr + H_VERSION, BLOB_VERSION);
	le16_put(w->hdr + H_ALG, (uint16_t)alg);
	le32_put(w->hdr + H_CHUNK, BLOB_CHUNK_SIZE);
	le64_put(w->hdr + H_CALL, num);
	le32_put(w->hdr + H_DAY, (uint32_t)day);
	randombytes_buf(w->hdr + H_NONCE, NONCE_LEN);
	err = fdio_pwrite_all(fd, w->hdr, BLOB_HEADER_LEN, 0);
	if (err)
		goto fail;
	w->file_size = BLOB_HEADER_LEN;
	*out = w;
	return 0;
fail:
	blob_writer_free(w);
	return err;
}

/* Seals buf in place and appends it. */
static int writer_seal(struct blob_writer *w, int last)
{
	unsigned char nonce[NONCE_LEN], ad[CHUNK_AD_LEN];
	int err;

	nonce_for(w->hdr, w->index, nonce);
	chunk_ad(w->hdr, w->index, last, ad);
	aead_seal(w->alg, w->buf, w->buf + w->fill, w->buf, w->fill, ad,
		  sizeof ad, nonce, w->key);
	err = fdio_pwrite_all(w->fd, w->buf, w->fill + TAG_LEN, w->file_size);
	if (err)
		return err;
	w->file_size += w->fill + TAG_LEN;
	w->index++;
	w->fill = 0;
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (w->err)
		return w->err;
	if (w->finished)
		return EINVAL;
	if (len > PLAIN_MAX - w->plain_size)
		return EFBIG;
	while (len > 0) {
		size_t n;
		/* A full chunk is sealed only once more data proves it is not
		 * the last one. */
		if (w->fill == BLOB_CHUNK_SIZE) {
			w->err = writer_seal(w, 0);
			if (w->err)
				return w->err;
		}
		n = BLOB_CHUNK_SIZE - w->fill;
		if (n > len)
			n = len;
		memcpy(w->buf + w->fill, p, n);
		w->fill += n;
		w->plain_size += n;
		p += n;
		len -= n;
	}
	return 0;
}

int blob_writer_finish(struct blob_writer *w, const void *meta,
		       size_t meta_len)
{
	unsigned char nonce[NONCE_LEN], ad[TRAILER_AD_LEN], foot[FOOTER_LEN];
	unsigned char *sealed = NULL;
	int err;

	if (w->err)
		return w->err;
	if (w->finished)
		return EINVAL;
	if (meta_len > META_MAX)
		return EINVAL;
	err = writer_seal(w, 1);
	if (err)
		goto out;
	sealed = malloc(meta_len + TAG_LEN);
	if (!sealed) {
		err = ENOMEM;
		goto out;
	}
	nonce_for(w->hdr, TRAILER_INDEX, nonce);
	trailer_ad(w->hdr, w->plain_size, (uint32_t)meta_len, ad);
	aead_seal(w->alg, sealed, sealed + meta_len, meta, meta_len, ad,
		  sizeof ad, nonce, w->key);
	le64_put(foot, w->plain_size);
	le32_put(foot + 8, (uint32_t)meta_len);
	memcpy(foot + 12, FOOTER_MAGIC, MAGIC_LEN);
	err = fdio_pwrite_all(w->fd, sealed, meta_len + TAG_LEN, w->file_size);
	if (err)
		goto out;
	w->file_size += meta_len + TAG_LEN;
	err = fdio_pwrite_all(w->fd, foot, FOOTER_LEN, w->file_size);
	if (err)
		goto out;
	w->file_size += FOOTER_LEN;
	w->finished = 1;
out:
	free(sealed);
	if (err)
		w->err = err;
	return err;
}

uint64_t blob_writer_plain_size(const struct blob_writer *w)
{
	return w->plain_size;
}

uint64_t blob_writer_file_size(const struct blob_writer *w)
{
	return w->file_size;
}

void blob_writer_free(struct blob_writer *w)
{
	if (!w)
		return;
	sodium_free(w->key);
	sodium_free(w->buf); /* wipes any buffered plaintext */
	free(w);
}

/* ---- reader ---- */

/* A reader with guarded room for one chunk of `chunk_size` and the key:
 * from the free list if it fits, else new. Its lock is initialised. */
static struct blob_reader *reader_get(uint32_t chunk_size)
{
	struct blob_reader *r = NULL;

	if (chunk_size == BLOB_CHUNK_SIZE) {
		pthread_mutex_lock(&pool_lock);
		r = pool;
		if (r) {
			pool = r->next;
			pool_len--;
		}
		pthread_mutex_unlock(&pool_lock);
		if (r) {
			r->next = NULL;
			return r;
		}
	}
	r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->fd = -1;
	r->chunk_size = chunk_size;
	r->mem = sodium_malloc(MEM_LEN(chunk_size));
	if (!r->mem || pthread_mutex_init(&r->lock, NULL) != 0) {
		sodium_free(r->mem);
		free(r);
		return NULL;
	}
	r->cache = r->mem;
	r->key = r->mem + chunk_size;
	return r;
}

/* Wipes the reader's key and plaintext and keeps it for the next open, or
 * frees it if the list is full. The fd is the caller's business. */
static void reader_put(struct blob_reader *r)
{
	sodium_memzero(r->mem, MEM_LEN(r->chunk_size));
	memset(r->hdr, 0, sizeof r->hdr);
	r->fd = -1;
	r->cache_idx = UINT64_MAX;
	if (r->chunk_size == BLOB_CHUNK_SIZE) {
		pthread_mutex_lock(&pool_lock);
		if (pool_len < POOL_MAX) {
			r->next = pool;
			pool = r;
			pool_len++;
			r = NULL;
		}
		pthread_mutex_unlock(&pool_lock);
		if (!r)
			return;
	}
	sodium_free(r->mem); /* wipes again, and unmaps */
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void reader_warn(struct blob_reader *r, uint64_t chunk)
{
	if (atomic_exchange(&r->warned, 1) == 0)
		log_warnx("blob: call %llu: chunk %llu fails authentication",
			  (unsigned long long)r->call_num,
			  (unsigned long long)chunk);
}

/* Reads a sealed chunk's `len` bytes of ciphertext into `data` and its
 * tag into `tag`: one preadv, the loop of two preads if it comes short. */
static int read_sealed(int fd, unsigned char *data, size_t len,
		       unsigned char tag[TAG_LEN], uint64_t off)
{
	struct iovec iov[2] = { { data, len }, { tag, TAG_LEN } };
	ssize_t n = preadv(fd, iov, 2, (off_t)off);
	int err;

	if (n == (ssize_t)(len + TAG_LEN))
		return 0;
	err = fdio_pread_all(fd, data, len, off);
	if (!err)
		err = fdio_pread_all(fd, tag, TAG_LEN, off + len);
	return err;
}

/* Decrypts chunk i in place in `plain` with its tag. 0 or EBADMSG. */
static int open_chunk(struct blob_reader *r, uint64_t i, unsigned char *plain,
		      size_t len, const unsigned char tag[TAG_LEN])
{
	unsigned char nonce[NONCE_LEN], ad[CHUNK_AD_LEN];

	nonce_for(r->hdr, i, nonce);
	chunk_ad(r->hdr, i, i + 1 == r->nchunks, ad);
	/* On failure the caller wipes whatever `plain` holds. */
	if (aead_open(r->alg, plain, plain, len, tag, ad, sizeof ad, nonce,
		      r->key) != 0)
		return EBADMSG;
	return 0;
}

/* Reads chunks first..first+n-1, all whole, into dst (their plaintext
 * back to back) with one preadv, and decrypts them there. On EBADMSG,
 * *bad is the first chunk that failed. */
static int read_chunks(struct blob_reader *r, uint64_t first, uint64_t n,
		       unsigned char *dst, uint64_t *bad)
{
	unsigned char tags[BATCH_CHUNKS][TAG_LEN];
	struct iovec iov[2 * BATCH_CHUNKS] = { { NULL, 0 } };
	size_t want = 0;
	ssize_t got;

	for (uint64_t k = 0; k < n; k++) {
		iov[2 * k].iov_base = dst + k * r->chunk_size;
		iov[2 * k].iov_len = r->chunk_size;
		iov[2 * k + 1].iov_base = tags[k];
		iov[2 * k + 1].iov_len = TAG_LEN;
		want += r->chunk_size + TAG_LEN;
	}
	got = preadv(r->fd, iov, (int)(2 * n), (off_t)chunk_offset(
		r->chunk_size, first));
	for (uint64_t k = 0; k < n; k++) {
		unsigned char *p = dst + k * r->chunk_size;
		int err;

		if (got != (ssize_t)want) {
			/* Short or failed: chunk by chunk, with the loop. */
			err = read_sealed(r->fd, p, r->chunk_size, tags[k],
					  chunk_offset(r->chunk_size,
						       first + k));
			if (err)
				return err;
		}
		err = open_chunk(r, first + k, p, r->chunk_size, tags[k]);
		if (err) {
			*bad = first + k;
			return err;
		}
	}
	return 0;
}

/* Reads and decrypts chunk i into `plain` (room for its plaintext) using
 * `tag` for the tag. 0, EBADMSG, or an I/O errno. */
static int read_chunk(struct blob_reader *r, uint64_t i, unsigned char *plain)
{
	unsigned char tag[TAG_LEN];
	size_t len = chunk_len(r->plain_size, r->chunk_size, r->nchunks, i);
	int err;

	err = read_sealed(r->fd, plain, len, tag,
			  chunk_offset(r->chunk_size, i));
	if (!err)
		err = open_chunk(r, i, plain, len, tag);
	return err;
}

int blob_open(int fd, const unsigned char key[32], struct blob_reader **out,
	      char **meta, size_t *meta_len)
{
	unsigned char nonce[NONCE_LEN], ad[TRAILER_AD_LEN];
	struct blob_reader *r = NULL;
	unsigned char *sealed = NULL, *plain = NULL;
	struct layout l;
	uint64_t toff;
	int err;

	*out = NULL;
	if (meta)
		*meta = NULL;
	if (meta_len)
		*meta_len = 0;
	err = read_layout(fd, &l, NULL, 0);
	if (err)
		goto out;
	if (!blob_alg_available(l.info.alg)) {
		log_warnx("blob: call %llu is sealed with %s, which this CPU "
			  "cannot run (it needs AES-NI and PCLMUL)",
			  (unsigned long long)l.info.call_num,
			  blob_alg_name(l.info.alg));
		err = ENOTSUP;
		goto out;
	}
	sealed = malloc((size_t)l.meta_len + TAG_LEN);
	plain = malloc((size_t)l.meta_len + 1);
	if (!sealed || !plain) {
		err = ENOMEM;
		goto out;
	}
	toff = l.info.file_size - FOOTER_LEN - TAG_LEN - l.meta_len;
	err = fdio_pread_all(fd, sealed, l.meta_len + TAG_LEN, toff);
	if (err)
		goto out;
	nonce_for(l.hdr, TRAILER_INDEX, nonce);
	trailer_ad(l.hdr, l.info.plain_size, l.meta_len, ad);
	if (aead_open(l.info.alg, plain, sealed, l.meta_len,
		      sealed + l.meta_len, ad, sizeof ad, nonce, key) != 0) {
		err = EBADMSG;
		goto out;
	}
	plain[l.meta_len] = '\0';

	r = reader_get(l.info.chunk_size);
	if (!r) {
		err = ENOMEM;
		goto out;
	}
	memcpy(r->key, key, KEY_LEN);
	memcpy(r->hdr, l.hdr, BLOB_HEADER_LEN);
	r->alg = l.info.alg;
	r->call_num = l.info.call_num;
	r->chunk_size = l.info.chunk_size;
	r->plain_size = l.info.plain_size;
	r->nchunks = l.nchunks;
	r->cache_idx = UINT64_MAX;
	atomic_init(&r->warned, 0);
	r->fd = fd;
	if (meta) {
		*meta = (char *)plain;
		plain = NULL;
	}
	if (meta_len)
		*meta_len = l.meta_len;
	*out = r;
	r = NULL;
out:
	if (r)
		reader_put(r);
	if (plain) {
		sodium_memzero(plain, (size_t)l.meta_len + 1);
		free(plain);
	}
	free(sealed);
	if (err)
		close(fd);
	return err;
}

ssize_t blob_pread(struct blob_reader *r, void *buf, size_t len,
		   uint64_t off)
{
	unsigned char *dst = buf;
	size_t done = 0;

	if (off >= r->plain_size)
		return 0;
	if (len > r->plain_size - off)
		len = (size_t)(r->plain_size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		uint64_t pos = off + done, i = pos / r->chunk_size;
		size_t in = (size_t)(pos % r->chunk_size);
		size_t clen = chunk_len(r->plain_size, r->chunk_size,
					r->nchunks, i);
		size_t n = clen - in;
		int err = 0;

		if (n > len - done)
			n = len - done;
		if (in == 0 && n == clen && clen == r->chunk_size) {
			/* Whole chunks: decrypted straight into the caller's
			 * buffer, no lock, no copy; read with one preadv. */
			uint64_t k = (len - done) / r->chunk_size, bad = i;

			if (k > BATCH_CHUNKS)
				k = BATCH_CHUNKS;
			if (k > r->nchunks - i)
				k = r->nchunks - i;
			n = (size_t)k * r->chunk_size;
			err = read_chunks(r, i, k, dst + done, &bad);
			i = bad;
		} else if (in == 0 && n == clen) {
			/* The last chunk, whole. */
			err = read_chunk(r, i, dst + done);
		} else {
			pthread_mutex_lock(&r->lock);
			if (r->cache_idx != i) {
				r->cache_idx = UINT64_MAX;
				err = read_chunk(r, i, r->cache);
				if (!err)
					r->cache_idx = i;
			}
			if (!err)
				memcpy(dst + done, r->cache + in, n);
			pthread_mutex_unlock(&r->lock);
		}
		if (err) {
			/* Chunks decrypted before the one that failed give
			 * no bytes either; leave none behind. */
			sodium_memzero(buf, len);
			if (err == EBADMSG) {
				reader_warn(r, i);
				return -EIO;
			}
			return -err;
		}
		done += n;
	}
	return (ssize_t)done;
}

uint64_t blob_plain_size(const struct blob_reader *r)
{
	return r->plain_size;
}

int blob_verify(struct blob_reader *r,
		void (*bad)(void *ctx, uint64_t chunk), void *ctx)
{
	unsigned char *plain = sodium_malloc(r->chunk_size);
	int err = 0, nbad = 0;

	if (!plain)
		return ENOMEM;
	for (uint64_t i = 0; i < r->nchunks; i++) {
		int rc = read_chunk(r, i, plain);
		if (rc == EBADMSG) {
			nbad++;
			if (bad)
				bad(ctx, i);
		} else if (rc) {
			err = rc;
			break;
		}
	}
	sodium_free(plain);
	if (!err && nbad)
		err = EBADMSG;
	return err;
}

void blob_close(struct blob_reader *r)
{
	if (!r)
		return;
	if (r->fd != -1)
		close(r->fd);
	reader_put(r);
}
