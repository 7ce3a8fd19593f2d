/* Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c): inputs
 * in memory as an audio source, as an anonymous file (memfd) for the APIs
 * that take a descriptor or a path, and a growable output buffer. Nothing
 * here touches the file system outside /tmp. */
#ifndef CALLVAULT_FUZZ_H
#define CALLVAULT_FUZZ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "callvault/audio.h"
#include "callvault/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fuzz_mem {
	const uint8_t *data;
	size_t size;
};

static inline ssize_t fuzz_mem_pread(void *ctx, void *buf, size_t len,
				     uint64_t off)
{
	const struct fuzz_mem *m = ctx;

	if (off >= m->size)
		return 0;
	if (len > m->size - off)
		len = m->size - (size_t)off;
	memcpy(buf, m->data + off, len);
	return (ssize_t)len;
}

static inline struct audio_source fuzz_mem_source(struct fuzz_mem *m)
{
	struct audio_source s = { m, fuzz_mem_pread, m->size };
	return s;
}

/* Output collected by an audio sink, capped so that no input makes the
 * target itself use unbounded memory. */
struct fuzz_buf {
	uint8_t *p;
	size_t len, cap;
};

#define FUZZ_BUF_MAX (8u << 20)

static inline int fuzz_buf_sink(void *ctx, const void *buf, size_t len)
{
	struct fuzz_buf *b = ctx;

	if (len > FUZZ_BUF_MAX - b->len)
		return EFBIG;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;
		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buf, len);
	b->len += len;
	return 0;
}

/* An anonymous file holding `data`, positioned at 0; -1 on failure. */
static inline int fuzz_memfd(const void *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	const uint8_t *p = data;

	if (fd < 0)
		return -1;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		size -= (size_t)n;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Quiet logs: the targets feed bad input on purpose, and a line per
 * execution would cost more than the execution. CALLVAULT_FUZZ_LOG=1
 * keeps them. */
static inline void fuzz_quiet(void)
{
	const char *v = getenv("CALLVAULT_FUZZ_LOG");

	log_init("callvault-fuzz", 0,
		 v && *v == '1' ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
}

/* A property the code promises did not hold: crash so that libFuzzer
 * keeps the input. */
#define FUZZ_ASSERT(cond)                                                   \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n",     \
				__FILE__, __LINE__, #cond);                 \
			abort();                                            \
		}                                                           \
	} while (0)

#endif
