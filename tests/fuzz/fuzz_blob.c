/* Blob reader on arbitrary bytes: blob_peek(), then blob_open() with a
 * fixed key, and if that ever succeeds, reads and blob_verify(). The file
 * is a memfd: nothing is written to disk. Random bytes almost never pass
 * the sealed trailer; fuzz_blob_chunks covers the authenticated paths. */
#include "fuzz.h"

#include <sodium.h>

#include "callvault/blob.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blob_reader *r = NULL;
	struct blob_info info;
	unsigned char buf[4096];
	char err[256], *meta = NULL;
	size_t meta_len = 0;
	int fd, rc;

	fd = fuzz_memfd(data, size);
	if (fd < 0)
		return 0;
	rc = blob_peek(fd, &info, err, sizeof err);
	if (rc == 0) {
		FUZZ_ASSERT(info.file_size == size);
		FUZZ_ASSERT(info.version == BLOB_VERSION);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	/* blob_open owns fd from here, also when it fails. */
	rc = blob_open(fd, fuzz_key, &r, &meta, &meta_len);
	if (rc == 0) {
		ssize_t n = blob_pread(r, buf, sizeof buf, 0);
		FUZZ_ASSERT(n >= -EIO);
		(void)blob_pread(r, buf, sizeof buf, blob_plain_size(r) / 2);
		(void)blob_verify(r, NULL, NULL);
		blob_close(r);
		free(meta);
	} else {
		FUZZ_ASSERT(r == NULL && meta == NULL);
	}
	return 0;
}
