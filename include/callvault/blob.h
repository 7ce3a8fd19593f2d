/* The encrypted container of one call (format: docs/format.md, version 1).
 *
 *   header (64 bytes, plain, authenticated as associated data everywhere)
 *   chunk 0 .. chunk n-1: AEAD ciphertext of BLOB_CHUNK_SIZE plaintext
 *                         bytes (the last may be shorter) + tag; the AEAD
 *                         is the header's algorithm, chosen by the writer
 *   trailer: sealed metadata, then plaintext size and a fixed footer
 *
 * Chunk nonces are the header's random base nonce XOR the chunk index; the
 * associated data binds the header (hence the call number and epoch), the
 * chunk index and a last-chunk flag, so swapping, reordering, truncating or
 * extending a blob is detected. The trailer is written last, so a blob can
 * be produced in one sequential pass of bounded memory.
 *
 * A blob works on a file descriptor; where the file lives is the store's
 * business. Functions return 0 or a positive errno unless stated. */
#ifndef CALLVAULT_BLOB_H
#define CALLVAULT_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLOB_VERSION 1
#define BLOB_CHUNK_SIZE 65536
#define BLOB_HEADER_LEN 64

/* The header's algorithm field. */
#define BLOB_ALG_XCHACHA20POLY1305 1
#define BLOB_ALG_AES256GCM 2    /* needs AES-NI and PCLMUL (libsodium) */

/* What can be read from a blob without a key. */
struct blob_info {
	uint16_t version;
	uint16_t alg;           /* BLOB_ALG_* */
	uint64_t call_num;
	int32_t day;
	uint32_t chunk_size;
	uint64_t plain_size;    /* from the trailer; not yet authenticated */
	uint64_t file_size;
};

/* Reads the header and footer of the blob in `fd` (unauthenticated; enough
 * to find the key). EINVAL (with a reason) if it is not a callvault blob of
 * a known version or its size is inconsistent. */
int blob_peek(int fd, struct blob_info *info, char *err, size_t errlen);

/* Whether this machine can seal and open blobs of algorithm `alg`. */
int blob_alg_available(unsigned alg);

/* "AES-256-GCM", "XChaCha20-Poly1305", or "unknown". */
const char *blob_alg_name(unsigned alg);

struct blob_writer;

/* Starts writing a blob for call `num` of `day` into the empty file `fd`,
 * sealed with `alg` (BLOB_ALG_*; ENOTSUP if this CPU cannot run it). The
 * key is copied. The writer does not own `fd`. */
int blob_writer_new(int fd, const unsigned char key[32], uint64_t num,
		    int32_t day, unsigned alg, struct blob_writer **out);

/* Appends plaintext; whole chunks are sealed and written at once, so memory
 * stays at one chunk. */
int blob_writer_write(struct blob_writer *w, const void *buf, size_t len);

/* Seals the last chunk and the trailer holding `meta` (opaque bytes, the
 * sealed metadata). Does not fsync: the caller decides durability. */
int blob_writer_finish(struct blob_writer *w, const void *meta,
		       size_t meta_len);

/* Plaintext bytes written so far; total file size once finished. */
uint64_t blob_writer_plain_size(const struct blob_writer *w);
uint64_t blob_writer_file_size(const struct blob_writer *w);

/* Wipes the key; does not close the fd. NULL-safe. */
void blob_writer_free(struct blob_writer *w);

struct blob_reader;

/* Opens the blob in `fd` (the reader takes ownership of fd and closes it,
 * also when blob_open fails) with its call key, checking header, size and
 * sealed trailer. EBADMSG if anything fails to authenticate, EINVAL if it
 * is not a blob, ENOTSUP (logged) if this CPU cannot run its algorithm.
 * If `meta` is
 * not NULL, *meta receives a malloc()ed copy of the metadata (NUL-terminated
 * for convenience) and *meta_len its length. */
int blob_open(int fd, const unsigned char key[32], struct blob_reader **out,
	      char **meta, size_t *meta_len);

/* Reads up to len plaintext bytes at offset off. Returns the number of bytes
 * read (0 at or past the end) or -errno; -EIO if a chunk fails to verify
 * (and logs which). Only the chunks touched are decrypted. Thread-safe for
 * concurrent calls on one reader. */
ssize_t blob_pread(struct blob_reader *r, void *buf, size_t len,
		   uint64_t off);

uint64_t blob_plain_size(const struct blob_reader *r);

/* Authenticates every chunk. Returns 0, or EBADMSG after calling
 * `bad(ctx, chunk_index)` for each chunk that fails (bad may be NULL). */
int blob_verify(struct blob_reader *r,
		void (*bad)(void *ctx, uint64_t chunk), void *ctx);

/* Closes the fd, wipes the key and cache. NULL-safe. */
void blob_close(struct blob_reader *r);

#endif
