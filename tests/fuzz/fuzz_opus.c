/* Ogg Opus validator: audio_transcode() on input that starts as an Ogg
 * stream (the first bytes are forced to "OggS" so every execution reaches
 * the validator), and audio_looks_complete().
 *
 * Property: what the validator accepts it copies unchanged (audio.h: "kept
 * as is"), and a copy is accepted again with the same result. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audio_params params = { 16000, 0 };
	struct fuzz_buf out = { 0 }, again = { 0 };
	struct audio_result res, res2;
	struct fuzz_mem mem;
	struct audio_source src;
	uint8_t *copy;
	char err[256];
	int rc;

	copy = malloc(size + 4);
	if (!copy)
		return 0;
	memcpy(copy, "OggS", 4);
	memcpy(copy + 4, data, size);
	mem.data = copy;
	mem.size = size + 4;
	src = fuzz_mem_source(&mem);

	(void)audio_looks_complete(&src);
	rc = audio_transcode(&src, &params, fuzz_buf_sink, &out, &res, err,
			     sizeof err);
	if (rc == 0) {
		struct fuzz_mem m2 = { out.p, out.len };
		struct audio_source s2 = fuzz_mem_source(&m2);

		FUZZ_ASSERT(res.input == AUDIO_FORMAT_OPUS);
		FUZZ_ASSERT(out.len == mem.size);
		FUZZ_ASSERT(memcmp(out.p, copy, out.len) == 0);
		rc = audio_transcode(&s2, &params, fuzz_buf_sink, &again,
				     &res2, err, sizeof err);
		FUZZ_ASSERT(rc == 0);
		FUZZ_ASSERT(res2.duration_ms == res.duration_ms);
		FUZZ_ASSERT(res2.samples == res.samples);
	} else {
		/* A refusal says why. */
		FUZZ_ASSERT(rc != EINVAL || err[0] != '\0');
	}
	free(out.p);
	free(again.p);
	free(copy);
	return 0;
}
