/* Spool files: random-access storage, sealed on disk, for the bytes a
 * recorder is still writing into incoming/. Plaintext never reaches the
 * disk: the file is a sequence of fixed 4 KiB blocks, each sealed with
 * XChaCha20-Poly1305 under a key derived from the vault's spool subkey and
 * the file's random id, with associated data binding the file id and the
 * block index (so blocks cannot be moved between positions or files). A
 * sealed header carries the logical size. Because the key derives from the
 * master key, a spool left by a crash can be read back by the next mount
 * (recovery) and by nothing without the key.
 *
 * Writers patch headers late (WAV sizes at offsets 4 and 40), rewrite from
 * offset 0, truncate, and write in pieces of 320 bytes to 64 KiB: the spool
 * keeps the block last written in memory and seals it when a write moves to
 * another block, on spool_sync() and on close, so a stream of small
 * sequential writes seals each block once. Memory: one block per spool.
 *
 * Not thread-safe: the caller serialises access to one spool. Functions
 * return 0 or a positive errno; the ssize_t ones return -errno. */
#ifndef CALLVAULT_SPOOL_H
#define CALLVAULT_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "callvault/keys.h"

#define SPOOL_BLOCK 4096
#define SPOOL_NAME_LEN 48 /* "in-<32 hex>.spool" + NUL */
#define SPOOL_MAX_SIZE (1ULL << 40)

struct spool;

/* Creates a new, empty spool file in directory `dirfd` (O_EXCL, 0600) and
 * returns its name. */
int spool_create(int dirfd, const struct keyring *ring, struct spool **out,
		 char name[SPOOL_NAME_LEN]);

/* Opens an existing spool (crash recovery). EBADMSG if its header does not
 * authenticate. */
int spool_open(int dirfd, const char *name, const struct keyring *ring,
	       struct spool **out);

/* Like pwrite(2)/pread(2) on the logical content. Writing past the end
 * extends the file; a gap reads as zeros. Reads past the end return 0.
 * EFBIG past SPOOL_MAX_SIZE. -EIO (logged) if a block on disk fails to
 * authenticate. */
ssize_t spool_pwrite(struct spool *s, const void *buf, size_t len,
		     uint64_t off);
ssize_t spool_pread(struct spool *s, void *buf, size_t len, uint64_t off);

/* Sets the logical size (shrinking drops data; growing reads as zeros). */
int spool_truncate(struct spool *s, uint64_t size);
uint64_t spool_size(const struct spool *s);

/* Seals the cached block and writes the header, without fsync: what was
 * written survives the death of this process (the kernel has it), though
 * not a crash of the machine. Costs one block seal and two small writes. */
int spool_flush(struct spool *s);

/* Seals the cached block, writes the header and fsyncs: after it returns,
 * spool_open() of this file gives exactly the current content. */
int spool_sync(struct spool *s);

/* Seals what is cached (without fsync), closes, wipes. NULL-safe. */
void spool_close(struct spool *s);

/* Removes a spool file (discard, or after its call was committed). */
int spool_unlink(int dirfd, const char *name);

#endif
