/* Private to the audio module: src/audio.c (sniffing, WAV parsing and
 * decoding) and src/audio_ogg.c (Opus encoding, Ogg muxing and Ogg Opus
 * validation). */
#ifndef CALLVAULT_AUDIO_INT_H
#define CALLVAULT_AUDIO_INT_H

#include "callvault/audio.h"

/* Used when audio_transcode() or audio_encoder_new() get no parameters.
 * Complexity 3, by measurement: a 10-minute 8 kHz mono WAV (pink noise,
 * 16 kbit/s) costs about 0.28x the CPU time of `opusenc --bitrate 16`
 * (complexity 10, resampling to 48 kHz); complexity 4 and 5, which are the
 * same for SILK narrowband, cost about 0.37x and 10 about 0.7x. What 3
 * gives up is warped noise shaping and interpolated NLSFs: a mean
 * log-spectral distance about 0.15 dB worse than 5 and 0.35 dB worse than 10
 * on synthetic voiced speech. */
#define AUDIO_DEFAULT_BITRATE 16000
#define AUDIO_DEFAULT_COMPLEXITY 3

/* Writes a one-line reason into err (if any) and returns EINVAL, so that
 * callers can `return audio_bad(err, errlen, "...")`. */
int audio_bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reads src as one Ogg Opus stream, validating it (RFC 7845: OpusHead,
 * OpusTags, Opus packets, granule positions, end of stream), and gives
 * every byte read to sink unchanged. Memory is bounded by the Ogg page and
 * packet size limits, not by the length of the stream. On EINVAL, some
 * bytes may already have been given to sink. */
int audio_ogg_copy(const struct audio_source *src, audio_sink_fn sink,
		   void *sink_ctx, struct audio_result *res, char *err,
		   size_t errlen);

#endif
