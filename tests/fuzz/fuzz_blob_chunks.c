/* Blob reader on authentic blobs: the AEAD paths. The input describes a
 * blob (plaintext, metadata) that blob_writer writes with a fixed key into
 * a memfd, and one change to its bytes; then the reader opens, reads and
 * verifies it.
 *
 * Input: [0] mode, [1] plaintext repeat, [2..5] le32 offset, [6] byte,
 * [7] metadata length, [8] read size, then the payload.
 *   mode % 4 == 0  the blob unchanged
 *             1  byte at offset XORed with [6] (|1, so it changes)
 *             2  truncated at offset
 *             3  header kept, everything after it replaced by the payload
 *                (random bytes as chunks of a valid header)
 *   mode & 4     sealed with AES-256-GCM (where the CPU has it), else
 *                XChaCha20-Poly1305
 *
 * Properties: an unchanged blob opens, gives back exactly its plaintext
 * and metadata, and verifies; a changed one never gives a byte that was
 * not written: open fails, or each read returns -EIO or the right bytes
 * (blob.h: a chunk that fails authentication gives EIO, never bytes). */
#include "fuzz.h"

#include <sodium.h>

#include "callvault/blob.h"

#define HDR_LEN 9
/* Enough for four chunks, so that middle, last and partial chunks and
 * reads across their boundaries are all reached. */
#define PLAIN_CAP (3 * BLOB_CHUNK_SIZE + 4096)

static const unsigned char fuzz_key[32] = "callvault fuzz key, not secret!";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (sodium_init() < 0)
		abort();
	return 0;
}

static int write_blob(int fd, unsigned alg, const uint8_t *plain,
		      size_t plain_len, const uint8_t *meta, size_t meta_len)
{
	struct blob_writer *w;
	int rc;

	rc = blob_writer_new(fd, fuzz_key, 184, 20000, alg, &w);
	if (rc)
		return rc;
	/* Odd-sized writes: the writer's chunk buffering is under test
	 * too. */
	for (size_t off = 0; off < plain_len && !rc;) {
		size_t n = plain_len - off < 7001 ? plain_len - off : 7001;
		rc = blob_writer_write(w, plain + off, n);
		off += n;
	}
	if (!rc)
		rc = blob_writer_finish(w, meta, meta_len);
	if (!rc)
		FUZZ_ASSERT(blob_writer_plain_size(w) == plain_len);
	blob_writer_free(w);
	return rc;
}

/* Changes the file as the input says; 1 if its bytes changed. */
static int tamper(int fd, unsigned mode, uint32_t where, uint8_t x,
		  const uint8_t *payload, size_t plen)
{
	off_t size = lseek(fd, 0, SEEK_END);
	uint8_t b;

	if (size <= 0)
		return 0;
	where %= (uint32_t)size;
	switch (mode) {
	case 1:
		if (pread(fd, &b, 1, where) != 1)
			abort();
		b ^= (uint8_t)(x | 1);
		if (pwrite(fd, &b, 1, where) != 1)
			abort();
		return 1;
	case 2:
		if (ftruncate(fd, where) != 0)
			abort();
		return 1;
	case 3:
		if (ftruncate(fd, BLOB_HEADER_LEN) != 0 ||
		    pwrite(fd, payload, plen, BLOB_HEADER_LEN) != (ssize_t)plen)
			abort();
		return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *payload = data + HDR_LEN;
	size_t plen, plain_len, meta_len, step;
	struct blob_reader *r = NULL;
	uint8_t *plain = NULL, *got = NULL;
	char *meta = NULL;
	size_t got_meta_len = 0;
	unsigned mode, alg;
	int fd, changed, rc;

	if (size < HDR_LEN)
		return 0;
	plen = size - HDR_LEN;
	mode = data[0] % 4;
	alg = (data[0] & 4) && blob_alg_available(BLOB_ALG_AES256GCM) ?
		      BLOB_ALG_AES256GCM :
		      BLOB_ALG_XCHACHA20POLY1305;
	meta_len = plen ? data[7] % (plen + 1) : 0;
	step = 1 + (size_t)data[8] * 521;

	/* The plaintext: the payload repeated 1 + [1] times, capped. */
	plain_len = plen * (1 + (size_t)data[1] * 4);
	if (plain_len > PLAIN_CAP)
		plain_len = PLAIN_CAP;
	plain = malloc(plain_len + 1);
	got = malloc(step);
	if (!plain || !got)
		goto out;
	for (size_t i = 0; i < plain_len; i++)
		plain[i] = payload[i % plen];
	/* At most 64 reads: a read in a chunk that fails decrypts it
	 * again, and a byte-by-byte pass over a bad chunk costs seconds. */
	if (step < plain_len / 64) {
		step = plain_len / 64;
		free(got);
		got = malloc(step);
		if (!got)
			goto out;
	}

	fd = memfd_create("fuzz-blob", MFD_CLOEXEC);
	if (fd < 0)
		goto out;
	rc = write_blob(fd, alg, plain, plain_len, payload, meta_len);
	FUZZ_ASSERT(rc == 0);
	changed = tamper(fd, mode, (uint32_t)data[2] | (uint32_t)data[3] << 8 |
			 (uint32_t)data[4] << 16 | (uint32_t)data[5] << 24,
			 data[6], payload, plen);

	rc = blob_open(fd, fuzz_key, &r, &meta, &got_meta_len);
	if (!changed)
		FUZZ_ASSERT(rc == 0);
	if (rc != 0) {
		FUZZ_ASSERT(rc == EBADMSG || rc == EINVAL);
		goto out;
	}
	/* Whatever opened carries the metadata that was written: the
	 * trailer is authenticated. */
	FUZZ_ASSERT(got_meta_len == meta_len);
	FUZZ_ASSERT(memcmp(meta, payload, meta_len) == 0);
	FUZZ_ASSERT(meta[meta_len] == '\0');
	FUZZ_ASSERT(blob_plain_size(r) == plain_len);

	for (uint64_t off = 0; off <= plain_len; off += step) {
		ssize_t n = blob_pread(r, got, step, off);
		if (n == -EIO) {
			FUZZ_ASSERT(changed);
			continue;
		}
		FUZZ_ASSERT(n >= 0);
		FUZZ_ASSERT((size_t)n ==
			    (plain_len - off < step ? plain_len - off : step));
		FUZZ_ASSERT(memcmp(got, plain + off, (size_t)n) == 0);
	}
	FUZZ_ASSERT(blob_pread(r, got, step, plain_len) == 0);
	rc = blob_verify(r, NULL, NULL);
	FUZZ_ASSERT(rc == 0 || (changed && rc == EBADMSG));
out:
	blob_close(r);
	free(meta);
	free(plain);
	free(got);
	return 0;
}
