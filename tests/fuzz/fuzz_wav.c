/* WAV parser and decoder: audio_transcode() on any bytes, and the
 * streaming encoder (audio_wavstream) fed the same bytes in pieces.
 *
 * Properties checked beyond "no sanitizer report":
 *   - what audio_transcode() accepts as WAV, it encodes to Ogg Opus that
 *     audio_transcode() itself accepts again, with the same number of
 *     samples (the duration may differ by the last millisecond's rounding:
 *     granule positions count 1/48 ms);
 *   - audio_wavstream_finish() either gives EAGAIN or exactly the bytes
 *     audio_transcode() gave (audio.h promises byte identity). */
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
	/* Complexity 0: the encoder is not what is under test. */
	struct audio_params params = { 16000, 0 };
	struct fuzz_mem mem = { data, size };
	struct audio_source src = fuzz_mem_source(&mem);
	struct fuzz_buf out = { 0 }, again = { 0 }, streamed = { 0 };
	struct audio_result res, res2, res3;
	struct audio_wavstream *ws = NULL;
	char err[256];
	int rc, rc2;

	(void)audio_sniff(data, size);
	(void)audio_looks_complete(&src);

	rc = audio_transcode(&src, &params, fuzz_buf_sink, &out, &res, err,
			     sizeof err);
	if (rc == 0 && res.input == AUDIO_FORMAT_WAV) {
		struct fuzz_mem m2 = { out.p, out.len };
		struct audio_source s2 = fuzz_mem_source(&m2);

		FUZZ_ASSERT(res.out_bytes == out.len);
		rc2 = audio_transcode(&s2, &params, fuzz_buf_sink, &again,
				      &res2, err, sizeof err);
		FUZZ_ASSERT(rc2 == 0);
		FUZZ_ASSERT(res2.input == AUDIO_FORMAT_OPUS);
		FUZZ_ASSERT(res2.samples == res.samples);
		FUZZ_ASSERT(res2.duration_ms + 1 >= res.duration_ms &&
			    res2.duration_ms <= res.duration_ms + 1);
	}

	/* The stream, pushed in pieces whose size the input's last byte
	 * picks, then finished against the whole file. */
	if (audio_wavstream_new(&params, fuzz_buf_sink, &streamed, &ws) == 0) {
		size_t step = size ? 1 + (size_t)data[size - 1] * 37 : 1;
		size_t off = 0;

		while (off < size) {
			size_t n = size - off < step ? size - off : step;
			if (audio_wavstream_push(ws, data + off, n, err,
						 sizeof err) != 0)
				break;
			off += n;
		}
		rc2 = audio_wavstream_finish(ws, &src, &res3, err, sizeof err);
		if (rc2 == 0) {
			FUZZ_ASSERT(rc == 0);
			FUZZ_ASSERT(streamed.len == out.len);
			FUZZ_ASSERT(memcmp(streamed.p, out.p, out.len) == 0);
			FUZZ_ASSERT(res3.samples == res.samples);
		} else if (rc2 != EAGAIN && rc2 != EFBIG) {
			/* Refused: audio_transcode() refuses it too. */
			FUZZ_ASSERT(rc != 0);
		}
		audio_wavstream_free(ws);
	}
	free(out.p);
	free(again.p);
	free(streamed.p);
	return 0;
}
