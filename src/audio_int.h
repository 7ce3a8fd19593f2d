/* Private to the audio module: src/audio.c (sniffing, WAV parsing and
 * decoding) and src/audio_ogg.c (Opus encoding, Ogg muxing and Ogg Opus
 * validation). */
#ifndef CALLVAULT_AUDIO_INT_H
#define CALLVAULT_AUDIO_INT_H

#include "callvault/audio.h"

/* Used when audio_transcode() is given no parameters. The complexity was
 * chosen by measurement (see audio_ogg.c). */
#define AUDIO_DEFAULT_BITRATE 16000
#define AUDIO_DEFAULT_COMPLEXITY 5

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
