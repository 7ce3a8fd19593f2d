/* Private to the audio module: src/audio.c (sniffing, WAV parsing and
 * decoding), src/audio_ogg.c (Opus encoding, Ogg muxing and Ogg Opus
 * validation) and src/audio_stream.c (streaming WAV encoding). */
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

/* Checks encoder parameters (NULL: the defaults). EINVAL with a reason. */
int audio_params_check(const struct audio_params *params, char *err,
		       size_t errlen);

/* Reads exactly len bytes at off. Returns 0, a positive errno, or -1 if
 * the source ends first. */
int audio_read_full(const struct audio_source *src, void *buf, size_t len,
		    uint64_t off);

/* WAV format tags this module decodes. */
#define WAV_TAG_PCM 0x0001
#define WAV_TAG_ALAW 0x0006
#define WAV_TAG_MULAW 0x0007

/* What the RIFF chunk walk found: one parser for audio_transcode() and for
 * the stream, so that both accept and refuse the same files, with the same
 * reasons. */
struct audio_wav_info {
	uint16_t tag;		/* PCM, A-law or mu-law */
	int channels;
	uint32_t rate;
	int sample_bytes;	/* 2 for PCM, 1 for G.711 */
	uint64_t data_off;	/* in the source */
	uint64_t data_len;	/* whole frames only; see audio_wav_parse() */
};

/* audio_wav_parse() results in prefix mode, besides 0 and errnos. */
#define AUDIO_WAV_MORE (-1)	  /* the header goes on past the bytes seen */
#define AUDIO_WAV_DATA_FIRST (-2) /* data before fmt: cannot be streamed */

/* Parses the WAV header of src, which starts with RIFF....WAVE (the caller
 * has checked with audio_sniff()). Returns 0, EINVAL with a reason, or the
 * source's errno.
 *
 * With prefix set, src holds only the first bytes of a file still being
 * written: missing bytes give AUDIO_WAV_MORE instead of "truncated", the
 * walk stops at the data chunk's header (data_off is then at most
 * src->size), and data_len is the data size the header declares, or
 * UINT64_MAX if it is one of the placeholders streaming writers leave (0,
 * 0xFFFFFFFF, 0x7FFFF000), not yet rounded to whole frames. */
int audio_wav_parse(const struct audio_source *src, int prefix,
		    struct audio_wav_info *wi, char *err, size_t errlen);

/* The reason why the first n bytes of an input (n <= 12), which are neither
 * RIFF/WAVE nor Ogg, are refused. Returns EINVAL. */
int audio_wav_head_bad(const unsigned char *head, size_t n, char *err,
		       size_t errlen);

/* G.711 expansion (ITU-T G.711, the tables libsndfile also uses): a mu-law
 * or A-law code to 16-bit linear PCM. */
int16_t audio_ulaw_expand(unsigned char code);
int16_t audio_alaw_expand(unsigned char code);

/* Reads src as one Ogg Opus stream, validating it (RFC 7845: OpusHead,
 * OpusTags, Opus packets, granule positions, end of stream), and gives
 * every byte read to sink unchanged. Memory is bounded by the Ogg page and
 * packet size limits, not by the length of the stream. On EINVAL, some
 * bytes may already have been given to sink. */
int audio_ogg_copy(const struct audio_source *src, audio_sink_fn sink,
		   void *sink_ctx, struct audio_result *res, char *err,
		   size_t errlen);

#endif
