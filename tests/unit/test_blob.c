/* blob: round trips at the chunk edges, random-access reads, every kind of
 * tampering, and concurrent readers, for each cipher; each cipher's chunks
 * and trailer as docs/format.md describes them. */
#include "callvault/blob.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CS BLOB_CHUNK_SIZE
#define TAG 16
#define BIG (5 * CS + 17)

/* The cipher write_blob() seals with; the tests run once for each. */
static unsigned alg = BLOB_ALG_XCHACHA20POLY1305;

static char tmpdir[256];
static char pathbuf[512];

static void rm_tmp(void)
{
	char p[600];
	static const char *const names[] = { "a.cvb", "b.cvb", "c.cvb" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

static const char *path_of(const char *name)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/test_blob.XXXXXX");
		if (!mkdtemp(tmpdir))
			abort();
		atexit(rm_tmp);
		if (sodium_init() < 0)
			abort();
	}
	snprintf(pathbuf, sizeof pathbuf, "%s/%s", tmpdir, name);
	return pathbuf;
}

static uint64_t chunk_off(uint64_t i)
{
	return BLOB_HEADER_LEN + i * (CS + TAG);
}

/* Writes a blob of `size` bytes of `data` in pieces of random sizes. */
static int write_blob(const char *path, const unsigned char key[32],
		      uint64_t num, int32_t day, const unsigned char *data,
		      size_t size, const char *meta, uint64_t *file_size)
{
	struct blob_writer *w = NULL;
	size_t done = 0;
	int fd, err;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	err = blob_writer_new(fd, key, num, day, alg, &w);
	while (!err && done < size) {
		size_t n = randombytes_uniform(3 * CS / 2) + 1;
		if (n > size - done)
			n = size - done;
		err = blob_writer_write(w, data + done, n);
		done += n;
	}
	if (!err && size == 0)
		err = blob_writer_write(w, data, 0);
	if (!err)
		err = blob_writer_finish(w, meta, meta ? strlen(meta) : 0);
	if (!err && blob_writer_plain_size(w) != size)
		err = EPROTO;
	if (!err && file_size)
		*file_size = blob_writer_file_size(w);
	blob_writer_free(w);
	close(fd);
	return err;
}

static int open_blob(const char *path, const unsigned char key[32],
		     struct blob_reader **r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	return blob_open(fd, key, r, NULL, NULL);
}

static void flip(const char *path, uint64_t off)
{
	unsigned char b;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= 0x10;
	CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
	close(fd);
}

static unsigned char *random_data(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);

	if (!p)
		abort();
	randombytes_buf(p, n);
	return p;
}

/* Compares blob_pread at (off, len) with the reference. */
static int read_matches(struct blob_reader *r, const unsigned char *ref,
			size_t size, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	size_t expect = off >= size ? 0 : (len < size - off ? len
							   : size - off);
	ssize_t got = blob_pread(r, buf, len, off);
	int ok = got == (ssize_t)expect &&
		 (expect == 0 || memcmp(buf, ref + off, expect) == 0);

	free(buf);
	return ok;
}

static void test_round_trip(void)
{
	static const size_t sizes[] = { 0, 1, CS - 1, CS, CS + 1, 2 * CS,
					BIG, 20 * CS + 3 };
	unsigned char key[32];
	const char *meta = "{\"call\":\"c-000042\",\"agent\":\"anna\"}";

	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t size = sizes[s];
		unsigned char *ref = random_data(size);
		const char *p = path_of("a.cvb");
		const char *m = size == BIG ? meta : NULL;
		struct blob_reader *r = NULL;
		struct blob_info info;
		uint64_t fsize = 0, nch = size ? (size + CS - 1) / CS : 1;
		char *mout = NULL, why[128];
		size_t mlen = 99;
		int fd, bad = 0;

		randombytes_buf(key, sizeof key);
		CHECK(write_blob(p, key, 42, 20000, ref, size, m, &fsize) ==
		      0);
		CHECK_INT(fsize, BLOB_HEADER_LEN + size + nch * TAG +
					 (m ? strlen(m) : 0) + TAG + 20);

		fd = open(p, O_RDONLY | O_CLOEXEC);
		CHECK(blob_peek(fd, &info, why, sizeof why) == 0);
		CHECK_INT(info.version, 1);
		CHECK_INT(info.alg, alg);
		CHECK_INT(info.call_num, 42);
		CHECK_INT(info.day, 20000);
		CHECK_INT(info.chunk_size, CS);
		CHECK_INT(info.plain_size, size);
		CHECK_INT(info.file_size, fsize);

		CHECK(blob_open(fd, key, &r, &mout, &mlen) == 0);
		if (!r) {
			free(ref);
			continue;
		}
		CHECK_INT(blob_plain_size(r), size);
		CHECK_INT(mlen, m ? strlen(m) : 0);
		CHECK_STR(mout, m ? m : "");
		free(mout);

		/* Whole, sequential 4 KiB, past the end, random. */
		CHECK(read_matches(r, ref, size, 0, size + 10));
		for (uint64_t off = 0; off < size + 4096; off += 4096)
			if (!read_matches(r, ref, size, off, 4096))
				bad++;
		CHECK(read_matches(r, ref, size, size, 100));
		CHECK(read_matches(r, ref, size, size + 12345, 100));
		for (uint64_t c = 1; c <= size / CS; c++)
			if (!read_matches(r, ref, size, c * CS - 5, 10) ||
			    !read_matches(r, ref, size, c * CS - 1, CS + 2))
				bad++;
		/* Runs of whole chunks, shorter and longer than one
		 * batched read, ending on the last chunk or before it. */
		for (uint64_t c = 0; c <= size / CS; c++)
			if (!read_matches(r, ref, size, c * CS, 3 * CS) ||
			    !read_matches(r, ref, size, c * CS, 18 * CS) ||
			    !read_matches(r, ref, size, c * CS, 2 * CS + 7))
				bad++;
		for (int i = 0; i < 300; i++) {
			uint64_t off = randombytes_uniform((uint32_t)size + 50);
			size_t len = randombytes_uniform(3 * CS);
			if (!read_matches(r, ref, size, off, len))
				bad++;
		}
		CHECK_INT(bad, 0);
		CHECK_INT(blob_verify(r, NULL, NULL), 0);
		blob_close(r);
		/* The reader owned the fd and closed it. */
		CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
		free(ref);
	}
}

struct bad_list {
	uint64_t idx[16];
	int n;
};

static void record_bad(void *ctx, uint64_t chunk)
{
	struct bad_list *b = ctx;
	if (b->n < 16)
		b->idx[b->n++] = chunk;
}

static unsigned char big_key[32];
static unsigned char *big_ref;

/* Fresh 6-chunk blob at a.cvb. */
static void make_big(void)
{
	if (!big_ref) {
		big_ref = random_data(BIG);
		randombytes_buf(big_key, sizeof big_key);
	}
	CHECK(write_blob(path_of("a.cvb"), big_key, 7, 20001, big_ref, BIG,
			 "meta", NULL) == 0);
}

/* Opens a.cvb, expects chunk `bad_chunk` (and only it) to fail, in
 * blob_pread and blob_verify. */
static void expect_bad_chunk(uint64_t bad_chunk)
{
	struct blob_reader *r = NULL;
	struct bad_list bl = { { 0 }, 0 };
	unsigned char buf[100];

	CHECK(open_blob(path_of("a.cvb"), big_key, &r) == 0);
	if (!r)
		return;
	CHECK_INT(blob_pread(r, buf, sizeof buf, bad_chunk * CS + 10), -EIO);
	CHECK_INT(blob_pread(r, buf, 0 + sizeof buf, bad_chunk * CS + 10),
		  -EIO); /* not cached as good */
	for (uint64_t c = 0; c < 6; c++)
		if (c != bad_chunk)
			CHECK(read_matches(r, big_ref, BIG, c * CS, 100));
	/* A read spanning the bad chunk fails as a whole. */
	CHECK_INT(blob_pread(r, buf, sizeof buf, bad_chunk * CS - 50 +
						     (bad_chunk ? 0 : 50)),
		  -EIO);
	/* A read of whole chunks (one preadv, decrypted in place) that
	 * includes the bad chunk fails as a whole and leaves no plaintext
	 * of the good chunks before it in the caller's buffer. */
	{
		unsigned char *all = malloc(BIG);
		size_t zero = 0;

		CHECK(all != NULL);
		if (all) {
			memset(all, 0xa5, BIG);
			CHECK_INT(blob_pread(r, all, BIG, 0), -EIO);
			for (size_t k = 0; k < BIG; k++)
				zero += all[k] == 0;
			CHECK_INT(zero, BIG);
			free(all);
		}
	}
	CHECK_INT(blob_verify(r, record_bad, &bl), EBADMSG);
	CHECK_INT(bl.n, 1);
	CHECK_INT(bl.idx[0], bad_chunk);
	blob_close(r);
}

static void expect_open_fails(void)
{
	struct blob_reader *r = NULL;
	int err = open_blob(path_of("a.cvb"), big_key, &r);

	CHECK(err == EBADMSG || err == EINVAL);
	CHECK(r == NULL);
	blob_close(r);
}

static void test_tamper_header(void)
{
	static const uint64_t offs[] = { 0, 7, 8, 10, 12, 16, 20, 24, 28, 40,
					 51, 52, 63 };
	struct blob_reader *r = NULL;

	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		make_big();
		flip(path_of("a.cvb"), offs[i]);
		expect_open_fails();
	}
	/* The call number, day and nonce are bound by authentication. */
	make_big();
	flip(path_of("a.cvb"), 16);
	CHECK_INT(open_blob(path_of("a.cvb"), big_key, &r), EBADMSG);
	make_big();
	flip(path_of("a.cvb"), 24);
	CHECK_INT(open_blob(path_of("a.cvb"), big_key, &r), EBADMSG);
}

static void test_tamper_chunk(void)
{
	make_big();
	flip(path_of("a.cvb"), chunk_off(2) + 1000);
	expect_bad_chunk(2);
	/* The tag of chunk 3. */
	make_big();
	flip(path_of("a.cvb"), chunk_off(3) + CS + 5);
	expect_bad_chunk(3);
	/* The short last chunk. */
	make_big();
	flip(path_of("a.cvb"), chunk_off(5) + 3);
	expect_bad_chunk(5);
	make_big();
	flip(path_of("a.cvb"), chunk_off(0));
	expect_bad_chunk(0);
}

static void test_tamper_trailer(void)
{
	struct stat st;
	struct blob_reader *r = NULL;

	/* Sealed metadata, its tag, and the footer's sizes and magic. */
	static const int back[] = { 20 + 16 + 4 - 1, 20 + 3, 20, 19, 12, 9,
				    1 };
	for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
		make_big();
		CHECK(stat(path_of("a.cvb"), &st) == 0);
		flip(path_of("a.cvb"), (uint64_t)st.st_size - back[i]);
		expect_open_fails();
	}
	make_big();
	CHECK(stat(path_of("a.cvb"), &st) == 0);
	flip(path_of("a.cvb"), (uint64_t)st.st_size - 22);
	CHECK_INT(open_blob(path_of("a.cvb"), big_key, &r), EBADMSG);
}

static void copy_range(const char *from, uint64_t from_off, const char *to,
		       uint64_t to_off, size_t len)
{
	unsigned char *buf = malloc(len);
	int a = open(from, O_RDONLY | O_CLOEXEC);
	int b = open(to, O_RDWR | O_CLOEXEC);

	CHECK(a >= 0 && b >= 0);
	CHECK(pread(a, buf, len, (off_t)from_off) == (ssize_t)len);
	CHECK(pwrite(b, buf, len, (off_t)to_off) == (ssize_t)len);
	close(a);
	close(b);
	free(buf);
}

static void test_swaps(void)
{
	struct blob_reader *r = NULL;
	struct bad_list bl = { { 0 }, 0 };
	unsigned char other_key[32];
	char b_path[512];

	/* Chunks 1 and 2 exchanged. */
	make_big();
	snprintf(b_path, sizeof b_path, "%s", path_of("b.cvb"));
	CHECK(write_blob(b_path, big_key, 7, 20001, big_ref, BIG, "meta",
			 NULL) == 0);
	copy_range(b_path, chunk_off(2), path_of("a.cvb"), chunk_off(1),
		   CS + TAG);
	copy_range(b_path, chunk_off(1), path_of("a.cvb"), chunk_off(2),
		   CS + TAG);
	CHECK(open_blob(path_of("a.cvb"), big_key, &r) == 0);
	if (r) {
		CHECK_INT(blob_verify(r, record_bad, &bl), EBADMSG);
		CHECK_INT(bl.n, 2);
		CHECK(bl.idx[0] == 1 && bl.idx[1] == 2);
		blob_close(r);
	}

	/* Chunk 2 of another blob of the same size and key, even the same
	 * call number: its header nonce differs, so it fails. */
	make_big();
	copy_range(b_path, chunk_off(2), path_of("a.cvb"), chunk_off(2),
		   CS + TAG);
	expect_bad_chunk(2);

	/* And of a different call under a different key. */
	randombytes_buf(other_key, sizeof other_key);
	CHECK(write_blob(b_path, other_key, 8, 20001, big_ref, BIG, "meta",
			 NULL) == 0);
	make_big();
	copy_range(b_path, chunk_off(2), path_of("a.cvb"), chunk_off(2),
		   CS + TAG);
	expect_bad_chunk(2);
}

static void test_truncate_extend(void)
{
	struct blob_reader *r = NULL;
	struct stat st;
	unsigned char tail[4 + 16 + 20]; /* sealed "meta", footer */
	int fd;

	/* At a chunk boundary and in the middle of a chunk. */
	make_big();
	CHECK(truncate(path_of("a.cvb"), (off_t)chunk_off(5)) == 0);
	expect_open_fails();
	make_big();
	CHECK(truncate(path_of("a.cvb"), (off_t)chunk_off(3) + 100) == 0);
	expect_open_fails();
	/* Appended bytes. */
	make_big();
	fd = open(path_of("a.cvb"), O_WRONLY | O_APPEND | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	expect_open_fails();

	/* A careful truncation: drop the last chunk, keep the trailer and
	 * fix the footer's size. The trailer's AD binds the size: refused. */
	make_big();
	CHECK(stat(path_of("a.cvb"), &st) == 0);
	fd = open(path_of("a.cvb"), O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pread(fd, tail, sizeof tail, st.st_size - (off_t)sizeof tail) ==
	      (ssize_t)sizeof tail);
	for (int i = 0; i < 8; i++)
		tail[20 + i] = (unsigned char)((uint64_t)(5 * CS) >> (8 * i));
	CHECK(pwrite(fd, tail, sizeof tail, (off_t)chunk_off(5)) ==
	      (ssize_t)sizeof tail);
	CHECK(ftruncate(fd, (off_t)chunk_off(5) + (off_t)sizeof tail) == 0);
	close(fd);
	CHECK_INT(open_blob(path_of("a.cvb"), big_key, &r), EBADMSG);
}

static void test_wrong_key_and_garbage(void)
{
	struct blob_reader *r = NULL;
	struct blob_info info;
	unsigned char other[32], junk[300];
	char why[128] = "";
	int fd;

	make_big();
	randombytes_buf(other, sizeof other);
	CHECK_INT(open_blob(path_of("a.cvb"), other, &r), EBADMSG);
	CHECK(r == NULL);

	fd = open(path_of("c.cvb"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0600);
	randombytes_buf(junk, sizeof junk);
	CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
	CHECK_INT(blob_peek(fd, &info, why, sizeof why), EINVAL);
	CHECK(why[0] != '\0');
	CHECK_INT(blob_open(fd, big_key, &r, NULL, NULL), EINVAL);
	CHECK(fcntl(fd, F_GETFD) == -1); /* closed even on failure */
	fd = open(path_of("c.cvb"), O_RDWR | O_TRUNC | O_CLOEXEC);
	CHECK_INT(blob_peek(fd, &info, why, sizeof why), EINVAL);
	close(fd);
}

struct reader_ctx {
	struct blob_reader *r;
	int bad;
};

static void *reader_thread(void *arg)
{
	struct reader_ctx *c = arg;

	for (int i = 0; i < 400; i++) {
		uint64_t off;
		size_t len;
		if (i % 2) {
			off = (uint64_t)(i * 4096) % BIG;
			len = 4096;
		} else {
			off = randombytes_uniform(BIG + 10);
			len = randombytes_uniform(2 * CS);
		}
		if (!read_matches(c->r, big_ref, BIG, off, len))
			c->bad++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct reader_ctx ctx[4];
	pthread_t th[4];
	struct blob_reader *r = NULL;

	make_big();
	CHECK(open_blob(path_of("a.cvb"), big_key, &r) == 0);
	if (!r)
		return;
	for (int i = 0; i < 4; i++) {
		ctx[i].r = r;
		ctx[i].bad = 0;
		CHECK(pthread_create(&th[i], NULL, reader_thread, &ctx[i]) ==
		      0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(ctx[i].bad, 0);
	}
	blob_close(r);
	free(big_ref);
	big_ref = NULL;
}

/* Readers are reused after blob_close(): a reader opened after another
 * one was closed must read its own blob with its own key, never the
 * plaintext the previous one had cached or its key, also when many are
 * open at once (more than are kept for reuse). */
static void test_reuse_after_close(void)
{
	unsigned char ka[32], kb[32], buf[100];
	unsigned char *da = random_data(2 * CS), *db = random_data(2 * CS);
	struct blob_reader *r = NULL, *many[40] = { NULL };
	unsigned save = alg;

	randombytes_buf(ka, sizeof ka);
	randombytes_buf(kb, sizeof kb);
	CHECK(write_blob(path_of("b.cvb"), ka, 1, 20001, da, 2 * CS, NULL,
			 NULL) == 0);
	/* The other blob in the other cipher, where the CPU has both: a
	 * reader of one is reused for the other. */
	if (blob_alg_available(BLOB_ALG_AES256GCM))
		alg = alg == BLOB_ALG_AES256GCM ? BLOB_ALG_XCHACHA20POLY1305 :
						  BLOB_ALG_AES256GCM;
	CHECK(write_blob(path_of("c.cvb"), kb, 2, 20001, db, 2 * CS, NULL,
			 NULL) == 0);
	alg = save;
	for (int round = 0; round < 3; round++) {
		/* A partial read fills the reader's chunk cache. */
		CHECK_INT(open_blob(path_of("b.cvb"), ka, &r), 0);
		if (!r)
			break;
		CHECK_INT(blob_pread(r, buf, sizeof buf, CS + 10),
			  (long)sizeof buf);
		CHECK(memcmp(buf, da + CS + 10, sizeof buf) == 0);
		blob_close(r);
		r = NULL;
		/* The same chunk index of the other blob. */
		CHECK_INT(open_blob(path_of("c.cvb"), kb, &r), 0);
		if (!r)
			break;
		CHECK_INT(blob_pread(r, buf, sizeof buf, CS + 10),
			  (long)sizeof buf);
		CHECK(memcmp(buf, db + CS + 10, sizeof buf) == 0);
		blob_close(r);
		r = NULL;
		/* The key of the blob closed before does not open this one. */
		CHECK_INT(open_blob(path_of("c.cvb"), ka, &r), EBADMSG);
		CHECK(r == NULL);
	}
	for (int i = 0; i < 40; i++) {
		CHECK_INT(open_blob(path_of(i % 2 ? "b.cvb" : "c.cvb"),
				    i % 2 ? ka : kb, &many[i]), 0);
		if (!many[i])
			continue;
		CHECK_INT(blob_pread(many[i], buf, sizeof buf, 5),
			  (long)sizeof buf);
		CHECK(memcmp(buf, (i % 2 ? da : db) + 5, sizeof buf) == 0);
	}
	for (int i = 0; i < 40; i++) {
		blob_close(many[i]);
		many[i] = NULL;
	}
	for (int i = 0; i < 40; i++) {
		CHECK_INT(open_blob(path_of(i % 2 ? "b.cvb" : "c.cvb"),
				    i % 2 ? ka : kb, &many[i]), 0);
		if (!many[i])
			continue;
		CHECK_INT(blob_pread(many[i], buf, sizeof buf, CS - 50),
			  (long)sizeof buf);
		CHECK(memcmp(buf, (i % 2 ? da : db) + CS - 50,
			     sizeof buf) == 0);
	}
	for (int i = 0; i < 40; i++)
		blob_close(many[i]);
	free(da);
	free(db);
}

/* libsodium's detached decryption for blob algorithm `a`; the nonce is
 * 24 bytes, of which AES-256-GCM reads 12. */
static int spec_decrypt(unsigned a, unsigned char *m, const unsigned char *c,
			size_t len, const unsigned char *ad, size_t adlen,
			const unsigned char *nonce, const unsigned char *key)
{
	if (a == BLOB_ALG_AES256GCM)
		return crypto_aead_aes256gcm_decrypt_detached(
			m, NULL, c, len, c + len, ad, adlen, nonce, key);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		m, NULL, c, len, c + len, ad, adlen, nonce, key);
}

/* Chunk 0 and the trailer open with nothing but libsodium and
 * docs/format.md: the nonce is the header's base nonce (its first 12 bytes
 * for AES-256-GCM) with bytes 0..7 XORed with the index, the AD the header
 * and the index (and the last-chunk flag, or P and M for the trailer). */
static int open_by_the_spec(const char *path, const unsigned char key[32],
			    unsigned a, const unsigned char *ref, size_t size,
			    const char *meta)
{
	size_t mlen = strlen(meta), clen = size < CS ? size : CS;
	unsigned char hdr[BLOB_HEADER_LEN], nonce[24], ad[BLOB_HEADER_LEN + 12];
	unsigned char *c = malloc(CS + TAG), *m = malloc(CS + 1);
	uint64_t n = size ? (size + CS - 1) / CS : 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc, ok = 0;

	if (fd < 0 || !c || !m ||
	    pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
	    pread(fd, c, clen + TAG, BLOB_HEADER_LEN) != (ssize_t)(clen + TAG))
		goto out;
	memcpy(nonce, hdr + 28, 24); /* chunk 0: XOR with le64(0) */
	memcpy(ad, hdr, BLOB_HEADER_LEN);
	memset(ad + BLOB_HEADER_LEN, 0, 8);
	ad[BLOB_HEADER_LEN + 8] = n == 1;
	rc = spec_decrypt(a, m, c, clen, ad, BLOB_HEADER_LEN + 9, nonce, key);
	if (rc != 0 || memcmp(m, ref, clen) != 0)
		goto out;
	/* The trailer: index 2^64 - 1, AD header || le64(P) || le32(M). */
	if (pread(fd, c, mlen + TAG,
		  (off_t)(BLOB_HEADER_LEN + size + n * TAG)) !=
	    (ssize_t)(mlen + TAG))
		goto out;
	for (int i = 0; i < 8; i++) {
		nonce[i] = hdr[28 + i] ^ 0xff;
		ad[BLOB_HEADER_LEN + i] = (unsigned char)(size >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		ad[BLOB_HEADER_LEN + 8 + i] = (unsigned char)(mlen >> (8 * i));
	rc = spec_decrypt(a, m, c, mlen, ad, BLOB_HEADER_LEN + 12, nonce, key);
	ok = rc == 0 && memcmp(m, meta, mlen) == 0;
out:
	if (fd >= 0)
		close(fd);
	free(c);
	free(m);
	return ok;
}

/* What the header's algorithm field does: it is reported, it decides the
 * cipher (as the format says), it is authenticated, and an unknown one is
 * refused without a key. */
static void test_algorithms(void)
{
	static const unsigned algs[] = { BLOB_ALG_XCHACHA20POLY1305,
					 BLOB_ALG_AES256GCM };
	unsigned char key[32], *ref = random_data(2 * CS + 5);
	const char *p = path_of("a.cvb");
	struct blob_reader *r = NULL;
	struct blob_info info;
	char why[128];
	int fd;

	randombytes_buf(key, sizeof key);
	CHECK(blob_alg_available(BLOB_ALG_XCHACHA20POLY1305));
	CHECK(!blob_alg_available(0) && !blob_alg_available(3));
	CHECK_STR(blob_alg_name(BLOB_ALG_AES256GCM), "AES-256-GCM");
	CHECK_INT(blob_writer_new(-1, key, 1, 1, 3, (struct blob_writer **)
				  &r), ENOTSUP);
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		unsigned char other[2] = { 0, 0 };
		size_t sizes[] = { 0, 100, 2 * CS + 5 };

		if (!blob_alg_available(algs[i])) {
			fprintf(stderr, "  (%s: not on this CPU)\n",
				blob_alg_name(algs[i]));
			continue;
		}
		alg = algs[i];
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			CHECK_INT(write_blob(p, key, 9, 20000, ref, sizes[s],
					     "{\"m\":1}", NULL), 0);
			CHECK(open_by_the_spec(p, key, alg, ref, sizes[s],
					       "{\"m\":1}"));
		}
		fd = open(p, O_RDONLY | O_CLOEXEC);
		CHECK_INT(blob_peek(fd, &info, why, sizeof why), 0);
		CHECK_INT(info.alg, alg);
		close(fd);
		/* Read as the other cipher: the header is in every AD. */
		other[0] = alg == BLOB_ALG_AES256GCM ? 1 : 2;
		fd = open(p, O_RDWR | O_CLOEXEC);
		CHECK_INT(pwrite(fd, other, 2, 10), 2);
		close(fd);
		if (blob_alg_available(other[0]))
			CHECK_INT(open_blob(p, key, &r), EBADMSG);
		CHECK(r == NULL);
		/* An algorithm no reader knows. */
		other[0] = 3;
		fd = open(p, O_RDWR | O_CLOEXEC);
		CHECK_INT(pwrite(fd, other, 2, 10), 2);
		CHECK_INT(blob_peek(fd, &info, why, sizeof why), EINVAL);
		CHECK_STR(why, "unsupported blob algorithm");
		close(fd);
		CHECK_INT(open_blob(p, key, &r), EINVAL);
	}
	alg = BLOB_ALG_XCHACHA20POLY1305;
	free(ref);
}

/* Every test again with blobs sealed with AES-256-GCM, the cipher new
 * recordings get where the CPU has it. */
static void test_all_aes256gcm(void)
{
	if (!blob_alg_available(BLOB_ALG_AES256GCM)) {
		fprintf(stderr, "  (AES-256-GCM: not on this CPU; skipped)\n");
		return;
	}
	alg = BLOB_ALG_AES256GCM;
	test_round_trip();
	test_tamper_header();
	test_tamper_chunk();
	test_tamper_trailer();
	test_swaps();
	test_truncate_extend();
	test_wrong_key_and_garbage();
	test_concurrent();
	test_reuse_after_close();
	alg = BLOB_ALG_XCHACHA20POLY1305;
}

TEST_MAIN("blob", T(test_round_trip), T(test_tamper_header),
	  T(test_tamper_chunk), T(test_tamper_trailer), T(test_swaps),
	  T(test_truncate_extend), T(test_wrong_key_and_garbage),
	  T(test_concurrent), T(test_reuse_after_close), T(test_algorithms),
	  T(test_all_aes256gcm))
