/* Audio: recognises and validates what recorders send, and produces the Ogg
 * Opus (RFC 7845) stream that the register keeps. Never sees keys or paths:
 * input comes through a reader callback, output goes to a sink callback, so
 * that plaintext audio only ever lives in memory.
 *
 * Accepted input:
 *   - WAV (RIFF/WAVE, also WAVE_FORMAT_EXTENSIBLE) with 16-bit PCM, G.711
 *     mu-law or A-law, 8000..48000 Hz, 1 or 2 channels; RIFF and data sizes
 *     exact, 0 or 0xFFFFFFFF (streaming writers patch them late); extra
 *     chunks (LIST, fact, ...) skipped. Decoded with libsndfile.
 *   - Ogg Opus, validated (OpusHead, OpusTags, packets) and kept as is.
 * WAV is encoded with libopus at the source's own rate where Opus has it
 * (8, 12, 16, 24, 48 kHz), otherwise resampled (speexdsp) to the next
 * higher Opus rate; stereo stays stereo; muxed with libogg. Granule
 * positions trim the end exactly, so the duration equals the source's.
 *
 * Functions return 0 or a positive errno; EINVAL means "bad input" and comes
 * with a one-line reason in err (e.g. "unsupported WAV encoding (IEEE
 * float)"). */
#ifndef CALLVAULT_AUDIO_H
#define CALLVAULT_AUDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct audio_params {
	int bitrate;    /* bits per second per channel; 16000 for speech */
	int complexity; /* libopus complexity, 0..10 */
};

/* Random-access input. pread returns bytes read, 0 at end, or -errno. */
struct audio_source {
	void *ctx;
	ssize_t (*pread)(void *ctx, void *buf, size_t len, uint64_t off);
	uint64_t size;
};

/* Receives output bytes in order. Returns 0 or a positive errno, which
 * aborts the transcode and is returned by it. */
typedef int (*audio_sink_fn)(void *ctx, const void *buf, size_t len);

enum audio_format {
	AUDIO_FORMAT_UNKNOWN = 0,
	AUDIO_FORMAT_WAV,
	AUDIO_FORMAT_OPUS,
};

struct audio_result {
	enum audio_format input;
	uint32_t source_rate;   /* sample rate of the input */
	int channels;
	uint64_t duration_ms;   /* of the audio, rounded to nearest ms */
	uint64_t samples;       /* per channel, at source_rate */
	uint64_t out_bytes;     /* Ogg Opus bytes given to the sink */
};

/* Recognises the input by its first bytes. */
enum audio_format audio_sniff(const void *head, size_t len);

/* Reads the whole input and writes Ogg Opus to sink: encodes WAV, or
 * validates and copies Ogg Opus. Memory stays bounded whatever the length.
 * An empty input or one with no audio samples is EINVAL. */
int audio_transcode(const struct audio_source *src,
		    const struct audio_params *params, audio_sink_fn sink,
		    void *sink_ctx, struct audio_result *res, char *err,
		    size_t errlen);

/* Push encoder, for input that arrives as PCM over time (a recorder writing
 * into the mount). Interleaved signed 16-bit samples at `rate`. */
struct audio_encoder;

int audio_encoder_new(uint32_t rate, int channels,
		      const struct audio_params *params, audio_sink_fn sink,
		      void *sink_ctx, struct audio_encoder **out, char *err,
		      size_t errlen);
int audio_encoder_push(struct audio_encoder *e, const int16_t *pcm,
		       size_t frames);
/* Flushes the last packet and the end-of-stream page. */
int audio_encoder_finish(struct audio_encoder *e, struct audio_result *res);
void audio_encoder_free(struct audio_encoder *e);

/* Whether a file that is still being written looks fully written: a WAV
 * whose declared data is all present (or whose sizes are the placeholders
 * streaming writers leave, which nothing can check), an Ogg stream whose
 * last page ends the stream, or input that is not audio at all (complete,
 * and bad: the commit will say why). 0 while a WAV's declared data or an
 * Ogg stream's end is still missing. The close of one copy of a recorder's
 * descriptor (a forked child's) must not commit a half-written call. */
int audio_looks_complete(const struct audio_source *src);

/* Streaming WAV encoding, for a recorder writing into the mount: the
 * file's bytes are pushed in order as they arrive and encoded as soon as
 * the header is known, so that the commit has only the tail left to do.
 *
 * Writers often leave the RIFF and data sizes at 0 or 0xFFFFFFFF until the
 * end, patch them, or append chunks (LIST) after the data: the caller
 * therefore pushes only bytes it believes final (it keeps a lag behind the
 * end of the file) and calls audio_wavstream_finish() with the complete
 * file. finish() reads the final header, checks that it describes the same
 * format and data start as the one streamed, feeds the remaining PCM up to
 * the data's real end, and produces exactly the bytes audio_transcode()
 * would have produced for the final file. If the streamed bytes cannot be
 * the start of the final file's audio (format changed, data start moved,
 * more was encoded than the data holds), it returns EAGAIN and the caller
 * transcodes the final file from the start.
 *
 * libsndfile cannot be pushed bytes, so the stream decodes 16-bit PCM and
 * G.711 itself, to the samples libsndfile gives, and feeds the same push
 * encoder (which resamples rates Opus lacks): the output is byte-identical
 * to audio_transcode()'s for every accepted WAV, resampled rates included.
 * Memory stays bounded: the header is buffered until parsed (64 KiB at
 * most), then only a partial frame. A file that cannot be streamed (header
 * over 64 KiB, data chunk before fmt) is not refused: pushes are only
 * counted and finish() encodes it whole. Not thread-safe: the caller
 * serialises calls on one stream. */
struct audio_wavstream;

int audio_wavstream_new(const struct audio_params *params, audio_sink_fn sink,
			void *sink_ctx, struct audio_wavstream **out);

/* Pushes the next `len` bytes of the file (offset = audio_wavstream_pushed()).
 * Returns 0; EINVAL with a reason if the header is not a WAV this module
 * encodes (the caller then keeps the bytes and lets the commit decide;
 * later pushes are only counted and return the same EINVAL); ENOMEM; or
 * the sink's error, which stays (later calls return it). */
int audio_wavstream_push(struct audio_wavstream *w, const void *buf,
			 size_t len, char *err, size_t errlen);

/* Bytes of the file pushed so far. */
uint64_t audio_wavstream_pushed(const struct audio_wavstream *w);

/* Where the audio data starts, once the header is known and data is being
 * encoded (0 otherwise). A later write below audio_wavstream_pushed() that
 * reaches past it changes audio already encoded: the caller must abandon
 * the stream (finish() cannot see such a change). */
uint64_t audio_wavstream_data_offset(const struct audio_wavstream *w);

/* Completes the stream against the final file (see above): 0 with *res
 * filled as audio_transcode() fills it; EAGAIN if the caller must start
 * over with audio_transcode(); EINVAL with a reason for bad input; or the
 * source's or sink's error. Call it once, whatever the pushes returned:
 * if nothing was encoded yet (nothing pushed, header incomplete, or
 * refused by push()), the final file is judged afresh and encoded whole,
 * or refused with the reason audio_transcode() would give. A final file
 * that is not RIFF/WAVE at all gives EAGAIN, so that audio_transcode()
 * copies Ogg Opus or says why it refuses the input. */
int audio_wavstream_finish(struct audio_wavstream *w,
			   const struct audio_source *final,
			   struct audio_result *res, char *err, size_t errlen);

void audio_wavstream_free(struct audio_wavstream *w);

#endif
