/* Ogg Opus: the push encoder (libopus, speexdsp for rates Opus lacks,
 * libogg muxing per RFC 7845) and the validation of Ogg Opus input.
 *
 * Encoding runs at the source's own rate when Opus has it: libopusenc would
 * resample everything to 48 kHz first, which costs about three times the
 * CPU for telephone audio. */
#include "audio_int.h"

#include "callvault/log.h"

#include <errno.h>
#include <limits.h>
#include <ogg/ogg.h>
#include <opus.h>
#include <speex/speex_resampler.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Packets of 120 ms, 41 to an Ogg page, because the register keeps calls
 * for months and the bytes stored per call-hour are its cost. Ogg spends a
 * lacing byte per packet (two from 255 bytes on) and 27 bytes and the
 * lacing table per page: with 20 ms packets (about 33 bytes at 16 kbit/s)
 * and a page a second that was 4.7% on top of the Opus payload; with 120
 * ms packets (SILK codes two 60 ms frames, repacketised) and 4.92 s pages
 * it is 0.9% (docs/format.md, "Audio"). Longer pages would save a little
 * more (0.7% at 10 s), but opusinfo warns, and exits 1, from 5 s of audio
 * on a page. On a synthetic hour of two-talker speech at 16 kbit/s and
 * complexity 3 the encoder also spends 6% fewer payload bytes than at 20
 * ms, for a mean log-spectral distance 0.06 dB worse; at equal payload
 * bytes 120 ms is 0.07 dB better. Latency does not matter: nothing plays
 * the stream while it is written. */
#define OPUS_FRAME_MS 120
#define PAGE_PACKETS ((5000 - 1) / OPUS_FRAME_MS)	/* < 5 s a page */
#define OGG_PAGE_MAX 65025	/* 255 lacing values of 255 bytes */
#define OPUS_MAX_PACKET 8000	/* 120 ms: up to 6 frames of 1275 bytes */
#define OGG_SERIAL 0x63766c74	/* "cvlt": fixed, so output is reproducible */
#define RESAMPLE_QUALITY SPEEX_RESAMPLER_QUALITY_DEFAULT
#define RESAMPLE_CHUNK 1024	/* input frames per resampler call */

/* Ogg Opus input limits: an Opus packet is at most 120 ms of 48 frames of
 * 1275 bytes (about 61 KiB); OpusTags may carry pictures, so it gets more
 * room. Anything larger is refused rather than buffered. */
#define OGG_READ_CHUNK 8192
#define OGG_MAX_AUDIO_PACKET 65536
#define OGG_MAX_PENDING (4L << 20)
#define OGG_MAX_DURATION (48000LL * 86400 * 7) /* a week, in 48 kHz samples */

struct audio_encoder {
	OpusEncoder *enc;
	SpeexResamplerState *rs;	/* NULL when rate is an Opus rate */
	ogg_stream_state os;
	audio_sink_fn sink;
	void *sink_ctx;
	uint32_t rate;		/* of the pushed PCM */
	uint32_t opus_rate;	/* of the encoder: 8, 12, 16, 24 or 48 kHz */
	int channels;
	int frame_size;		/* frames per packet at opus_rate */
	int scale;		/* 48000 / opus_rate */
	int lookahead;		/* encoder delay, frames at opus_rate */
	int16_t *frame;		/* frame_size * channels */
	int fill;		/* frames in `frame` */
	int16_t *rsbuf;		/* resampler output */
	size_t rsbuf_frames;
	unsigned char *pkt[2];	/* the held packet and the new one */
	int held_len;		/* bytes in pkt[0], 0 = none held */
	uint64_t in_frames;	/* pushed, at rate */
	uint64_t fed;		/* frames given to the encoder */
	uint64_t packets;	/* audio packets handed to the Ogg stream */
	int page_packets;	/* packets since the last page was closed */
	int headers_done;
	int finished;
	int err;		/* sticky: once failed, always failed */
	uint64_t out_bytes;
};

static const uint32_t opus_rates[] = { 8000, 12000, 16000, 24000, 48000 };

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, v & 0xffff);
	put_le16(p + 2, v >> 16);
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

int audio_bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return EINVAL;
}

/* ---- Encoding and muxing ---------------------------------------------- */

/* Writes out the pages libogg has filled (255 lacing values, which only
 * packets of high bitrates reach before PAGE_PACKETS), or with flush all
 * pending packets. libogg's own defaults would close pages at 4 KiB. */
static int enc_write_pages(struct audio_encoder *e, int flush)
{
	ogg_page og;
	int err;

	while (flush ? ogg_stream_flush_fill(&e->os, &og, OGG_PAGE_MAX) :
		       ogg_stream_pageout_fill(&e->os, &og, OGG_PAGE_MAX)) {
		err = e->sink(e->sink_ctx, og.header, (size_t)og.header_len);
		if (!err)
			err = e->sink(e->sink_ctx, og.body,
				      (size_t)og.body_len);
		if (err)
			return err;
		e->out_bytes += (uint64_t)og.header_len + (uint64_t)og.body_len;
	}
	return 0;
}

static int enc_packet_in(struct audio_encoder *e, unsigned char *data,
			 long len, int64_t granule, int bos, int eos,
			 int64_t packetno)
{
	ogg_packet op = {
		.packet = data,
		.bytes = len,
		.b_o_s = bos,
		.e_o_s = eos,
		.granulepos = granule,
		.packetno = packetno,
	};

	if (ogg_stream_packetin(&e->os, &op) != 0) {
		log_warnx("audio: libogg refused a packet");
		return EIO;
	}
	return 0;
}

/* RFC 7845: OpusHead alone on the first page, OpusTags on the next, so
 * that the first audio page starts a fresh page. */
static int enc_headers(struct audio_encoder *e)
{
	unsigned char head[19];
	unsigned char tags[128];
	const char *ver = opus_get_version_string();
	int vlen, err;

	memcpy(head, "OpusHead", 8);
	head[8] = 1;
	head[9] = (unsigned char)e->channels;
	put_le16(head + 10, (uint16_t)(e->lookahead * e->scale));
	put_le32(head + 12, e->rate);
	put_le16(head + 16, 0);
	head[18] = 0;

	memcpy(tags, "OpusTags", 8);
	vlen = snprintf((char *)tags + 12, sizeof tags - 16, "callvault %s",
			ver);
	if (vlen < 0 || (size_t)vlen >= sizeof tags - 16)
		vlen = (int)strlen("callvault");
	put_le32(tags + 8, (uint32_t)vlen);
	put_le32(tags + 12 + vlen, 0);

	err = enc_packet_in(e, head, sizeof head, 0, 1, 0, 0);
	if (!err)
		err = enc_write_pages(e, 1);
	if (!err)
		err = enc_packet_in(e, tags, 16 + vlen, 0, 0, 0, 1);
	if (!err)
		err = enc_write_pages(e, 1);
	return err;
}

/* Hands the held packet (pkt[0]) to the Ogg stream. The last one is held
 * until finish so that it can carry the end-of-stream flag and the granule
 * position that trims the padding. */
static int enc_submit_held(struct audio_encoder *e, int64_t granule, int eos)
{
	int err;

	err = enc_packet_in(e, e->pkt[0], e->held_len, granule, 0, eos,
			    (int64_t)e->packets + 2);
	if (err)
		return err;
	e->packets++;
	e->held_len = 0;
	if (eos || ++e->page_packets >= PAGE_PACKETS) {
		e->page_packets = 0;
		return enc_write_pages(e, 1);
	}
	return enc_write_pages(e, 0);
}

/* Encodes the full frame buffer into pkt[1], submits the previously held
 * packet and holds the new one. */
static int enc_frame(struct audio_encoder *e)
{
	unsigned char *tmp;
	opus_int32 n;
	int err;

	n = opus_encode(e->enc, e->frame, e->frame_size, e->pkt[1],
			OPUS_MAX_PACKET);
	if (n < 0) {
		log_warnx("audio: opus_encode: %s", opus_strerror(n));
		return EIO;
	}
	e->fill = 0;
	if (!e->headers_done) {
		err = enc_headers(e);
		if (err)
			return err;
		e->headers_done = 1;
	}
	if (e->held_len) {
		err = enc_submit_held(e,
				      (int64_t)(e->packets + 1) *
					      e->frame_size * e->scale,
				      0);
		if (err)
			return err;
	}
	tmp = e->pkt[0];
	e->pkt[0] = e->pkt[1];
	e->pkt[1] = tmp;
	e->held_len = n;
	return 0;
}

/* Gives frames at opus_rate to the encoder; pcm NULL means silence. */
static int enc_feed(struct audio_encoder *e, const int16_t *pcm,
		    uint64_t frames)
{
	size_t ch = (size_t)e->channels;
	int err;

	while (frames) {
		size_t n = (size_t)(e->frame_size - e->fill);

		if (n > frames)
			n = (size_t)frames;
		if (pcm) {
			memcpy(e->frame + (size_t)e->fill * ch, pcm,
			       n * ch * sizeof *pcm);
			pcm += n * ch;
		} else {
			memset(e->frame + (size_t)e->fill * ch, 0,
			       n * ch * sizeof *e->frame);
		}
		e->fill += (int)n;
		e->fed += n;
		frames -= n;
		if (e->fill == e->frame_size) {
			err = enc_frame(e);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Runs `frames` input frames (NULL: silence) through the resampler and
 * feeds at most `limit` output frames to the encoder; the rest is dropped
 * (used at the end, where the resampler's tail is only flushed). */
static int enc_resample(struct audio_encoder *e, const int16_t *pcm,
			size_t frames, uint64_t limit)
{
	static const int16_t zeros[RESAMPLE_CHUNK * 2];
	int err;

	while (frames) {
		spx_uint32_t in_len = RESAMPLE_CHUNK;
		spx_uint32_t out_len = (spx_uint32_t)e->rsbuf_frames;
		int r;

		if (frames < in_len)
			in_len = (spx_uint32_t)frames;
		r = speex_resampler_process_interleaved_int(
			e->rs, pcm ? pcm : zeros, &in_len, e->rsbuf, &out_len);
		if (r != RESAMPLER_ERR_SUCCESS) {
			log_warnx("audio: resampler: %s",
				  speex_resampler_strerror(r));
			return EIO;
		}
		if (out_len > limit)
			out_len = (spx_uint32_t)limit;
		limit -= out_len;
		err = enc_feed(e, e->rsbuf, out_len);
		if (err)
			return err;
		if (pcm)
			pcm += (size_t)in_len * (size_t)e->channels;
		frames -= in_len;
		if (!in_len && !out_len)
			break;
	}
	return 0;
}

int audio_params_check(const struct audio_params *params, char *err,
		       size_t errlen)
{
	if (!params)
		return 0;
	if (params->bitrate < 500 || params->bitrate > 256000)
		return audio_bad(err, errlen,
				 "invalid Opus bitrate %d (500..256000 per channel)",
				 params->bitrate);
	if (params->complexity < 0 || params->complexity > 10)
		return audio_bad(err, errlen,
				 "invalid Opus complexity %d (0..10)",
				 params->complexity);
	return 0;
}

int audio_encoder_new(uint32_t rate, int channels,
		      const struct audio_params *params, audio_sink_fn sink,
		      void *sink_ctx, struct audio_encoder **out, char *err,
		      size_t errlen)
{
	struct audio_params defaults = { AUDIO_DEFAULT_BITRATE,
					 AUDIO_DEFAULT_COMPLEXITY };
	struct audio_encoder *e = NULL;
	opus_int32 lookahead;
	int ret = 0, oerr;
	size_t i;

	*out = NULL;
	if (!params)
		params = &defaults;
	if (rate < 8000 || rate > 48000)
		return audio_bad(err, errlen,
				 "unsupported sample rate (%u Hz; 8000..48000)",
				 (unsigned)rate);
	if (channels < 1 || channels > 2)
		return audio_bad(err, errlen,
				 "unsupported channel count (%d; mono or stereo only)",
				 channels);
	ret = audio_params_check(params, err, errlen);
	if (ret)
		return ret;

	e = calloc(1, sizeof *e);
	if (!e)
		return ENOMEM;
	if (ogg_stream_init(&e->os, OGG_SERIAL) != 0) {
		free(e);
		return ENOMEM;
	}
	e->sink = sink;
	e->sink_ctx = sink_ctx;
	e->rate = rate;
	e->channels = channels;
	for (i = 0; i < sizeof opus_rates / sizeof opus_rates[0]; i++) {
		if (opus_rates[i] >= rate) {
			e->opus_rate = opus_rates[i];
			break;
		}
	}
	e->scale = (int)(48000 / e->opus_rate);
	e->frame_size = (int)(e->opus_rate / 1000 * OPUS_FRAME_MS);

	e->frame = calloc((size_t)e->frame_size * (size_t)channels,
			  sizeof *e->frame);
	e->pkt[0] = malloc(OPUS_MAX_PACKET);
	e->pkt[1] = malloc(OPUS_MAX_PACKET);
	if (!e->frame || !e->pkt[0] || !e->pkt[1]) {
		ret = ENOMEM;
		goto out;
	}

	if (e->opus_rate != rate) {
		e->rs = speex_resampler_init((spx_uint32_t)channels, rate,
					     e->opus_rate, RESAMPLE_QUALITY,
					     &oerr);
		if (!e->rs) {
			log_warnx("audio: speex_resampler_init: %s",
				  speex_resampler_strerror(oerr));
			ret = ENOMEM;
			goto out;
		}
		/* Aligns output with input, so that only the tail needs
		 * flushing at the end. */
		speex_resampler_skip_zeros(e->rs);
		e->rsbuf_frames = (size_t)RESAMPLE_CHUNK * e->opus_rate / rate +
				  64;
		e->rsbuf = calloc(e->rsbuf_frames * (size_t)channels,
				  sizeof *e->rsbuf);
		if (!e->rsbuf) {
			ret = ENOMEM;
			goto out;
		}
	}

	e->enc = opus_encoder_create((opus_int32)e->opus_rate, channels,
				     OPUS_APPLICATION_VOIP, &oerr);
	if (!e->enc) {
		log_warnx("audio: opus_encoder_create: %s", opus_strerror(oerr));
		ret = oerr == OPUS_ALLOC_FAIL ? ENOMEM : EIO;
		goto out;
	}
	oerr = opus_encoder_ctl(e->enc,
				OPUS_SET_BITRATE(params->bitrate * channels));
	if (oerr == OPUS_OK)
		oerr = opus_encoder_ctl(
			e->enc, OPUS_SET_COMPLEXITY(params->complexity));
	if (oerr == OPUS_OK)
		oerr = opus_encoder_ctl(e->enc,
					OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
	if (oerr == OPUS_OK)
		oerr = opus_encoder_ctl(e->enc, OPUS_GET_LOOKAHEAD(&lookahead));
	if (oerr != OPUS_OK) {
		log_warnx("audio: opus_encoder_ctl failed");
		ret = EIO;
		goto out;
	}
	e->lookahead = (int)lookahead;
	*out = e;
	e = NULL;
out:
	audio_encoder_free(e);
	return ret;
}

int audio_encoder_push(struct audio_encoder *e, const int16_t *pcm,
		       size_t frames)
{
	if (e->err)
		return e->err;
	if (e->finished)
		return EINVAL;
	e->in_frames += frames;
	if (e->rs)
		e->err = enc_resample(e, pcm, frames, UINT64_MAX);
	else
		e->err = enc_feed(e, pcm, frames);
	return e->err;
}

/* The encoder is fed the source's samples (M at opus_rate), then silence
 * until the encoder's lookahead has come out too, rounded up to a whole
 * frame. The last page's granule position, pre-skip + M, makes decoders
 * drop the padding, so the decoded duration is the source's. */
static int enc_finish(struct audio_encoder *e)
{
	uint64_t m = e->in_frames, target;
	int64_t granule;
	int err;

	if (e->rs) {
		/* The resampler holds back its input latency: push silence
		 * through it (a few rounds at most) to get the tail out. */
		size_t tail = (size_t)speex_resampler_get_input_latency(e->rs);

		m = (e->in_frames * e->opus_rate + e->rate / 2) / e->rate;

		for (int i = 0; i < 8 && e->fed < m; i++) {
			err = enc_resample(e, NULL, tail + 1, m - e->fed);
			if (err)
				return err;
		}
		if (e->fed < m) {
			err = enc_feed(e, NULL, m - e->fed);
			if (err)
				return err;
		}
	}
	target = m + (uint64_t)e->lookahead;
	if (e->fed < target) {
		err = enc_feed(e, NULL, target - e->fed);
		if (err)
			return err;
	}
	if (e->fill) {
		err = enc_feed(e, NULL, (uint64_t)(e->frame_size - e->fill));
		if (err)
			return err;
	}
	granule = (int64_t)((uint64_t)e->lookahead + m) * e->scale;
	return enc_submit_held(e, granule, 1);
}

int audio_encoder_finish(struct audio_encoder *e, struct audio_result *res)
{
	if (e->err)
		return e->err;
	if (e->finished)
		return EINVAL;
	e->finished = 1;
	if (!e->in_frames)
		return e->err = EINVAL;
	e->err = enc_finish(e);
	if (e->err)
		return e->err;
	if (res) {
		/* The push encoder is fed what recorders write as WAV. */
		res->input = AUDIO_FORMAT_WAV;
		res->source_rate = e->rate;
		res->channels = e->channels;
		res->samples = e->in_frames;
		res->duration_ms =
			(e->in_frames * 1000 + e->rate / 2) / e->rate;
		res->out_bytes = e->out_bytes;
	}
	return 0;
}

void audio_encoder_free(struct audio_encoder *e)
{
	if (!e)
		return;
	if (e->enc)
		opus_encoder_destroy(e->enc);
	if (e->rs)
		speex_resampler_destroy(e->rs);
	ogg_stream_clear(&e->os);
	free(e->frame);
	free(e->rsbuf);
	free(e->pkt[0]);
	free(e->pkt[1]);
	free(e);
}

/* ---- Ogg Opus input ---------------------------------------------------- */

struct ogg_check {
	ogg_stream_state os;
	int have_stream;
	int serial;
	uint64_t packets;	/* completed, headers included */
	int channels;
	uint32_t input_rate;
	int64_t pre_skip;
	int64_t samples;	/* 48 kHz, of all audio packets so far */
	int64_t last_granule;
	int64_t start_offset;	/* granule of the first sample */
	int audio_pages;	/* pages that completed an audio packet */
	int eos;
};

static int check_opushead(struct ogg_check *c, const ogg_packet *op,
			  char *err, size_t errlen)
{
	const unsigned char *p = op->packet;

	if (op->bytes < 8 || memcmp(p, "OpusHead", 8) != 0)
		return audio_bad(err, errlen,
				 "Ogg stream is not Opus (no OpusHead)");
	if (op->bytes < 19)
		return audio_bad(err, errlen, "truncated OpusHead header");
	if (p[8] >> 4)
		return audio_bad(err, errlen,
				 "unsupported OpusHead version %u", p[8]);
	if (p[18] != 0)
		return audio_bad(err, errlen,
				 "unsupported Ogg Opus channel mapping family %u",
				 p[18]);
	if (p[9] < 1 || p[9] > 2)
		return audio_bad(err, errlen,
				 "invalid OpusHead channel count %u for mapping family 0",
				 p[9]);
	c->channels = p[9];
	c->pre_skip = get_le16(p + 10);
	c->input_rate = get_le32(p + 12);
	return 0;
}

/* Walks the OpusTags structure without trusting any of its lengths. */
static int check_opustags(const ogg_packet *op, char *err, size_t errlen)
{
	const unsigned char *p = op->packet;
	uint64_t len = (uint64_t)op->bytes, off = 8, n, i, l;

	if (len < 8 || memcmp(p, "OpusTags", 8) != 0)
		return audio_bad(err, errlen,
				 "invalid Ogg Opus stream (OpusTags missing)");
	if (len - off < 4)
		goto bad;
	l = get_le32(p + off);
	off += 4;
	if (len - off < l)
		goto bad;
	off += l;
	if (len - off < 4)
		goto bad;
	n = get_le32(p + off);
	off += 4;
	for (i = 0; i < n; i++) {
		if (len - off < 4)
			goto bad;
		l = get_le32(p + off);
		off += 4;
		if (len - off < l)
			goto bad;
		off += l;
	}
	return 0;
bad:
	return audio_bad(err, errlen, "invalid OpusTags header");
}

static int check_audio_packet(struct ogg_check *c, const ogg_packet *op,
			      char *err, size_t errlen)
{
	const unsigned char *frames[48];
	opus_int16 sizes[48];
	unsigned char toc;
	int n;

	if (op->bytes < 1 || op->bytes > OGG_MAX_AUDIO_PACKET)
		return audio_bad(err, errlen,
				 "invalid Opus packet (%ld bytes) in packet %llu",
				 op->bytes, (unsigned long long)c->packets);
	if (opus_packet_get_nb_frames(op->packet, (opus_int32)op->bytes) <= 0 ||
	    opus_packet_parse(op->packet, (opus_int32)op->bytes, &toc, frames,
			      sizes, NULL) <= 0)
		goto bad;
	n = opus_packet_get_nb_samples(op->packet, (opus_int32)op->bytes,
				       48000);
	if (n <= 0 || n > 5760)
		goto bad;
	c->samples += n;
	return 0;
bad:
	return audio_bad(err, errlen, "invalid Opus packet %llu",
			 (unsigned long long)c->packets);
}

static int check_page(struct ogg_check *c, ogg_page *og, char *err,
		      size_t errlen)
{
	ogg_packet op;
	int64_t granule = ogg_page_granulepos(og);
	uint64_t first = c->packets;
	int audio_done = 0, r, ret;

	if (c->eos)
		return audio_bad(err, errlen,
				 "data after the end of the Ogg Opus stream "
				 "(chained streams are not supported)");
	if (!c->have_stream) {
		if (!ogg_page_bos(og))
			return audio_bad(err, errlen,
					 "invalid Ogg stream (first page does not start a stream)");
		c->serial = ogg_page_serialno(og);
		if (ogg_stream_init(&c->os, c->serial) != 0)
			return ENOMEM;
		c->have_stream = 1;
	} else if (ogg_page_serialno(og) != c->serial || ogg_page_bos(og)) {
		return audio_bad(err, errlen,
				 "multiplexed or chained Ogg streams are not supported");
	}
	if (ogg_stream_pagein(&c->os, og) != 0)
		return audio_bad(err, errlen, "invalid Ogg page");
	if (c->os.body_fill - c->os.body_returned > OGG_MAX_PENDING)
		return audio_bad(err, errlen, "Ogg packet too large");

	while ((r = ogg_stream_packetout(&c->os, &op)) != 0) {
		if (r < 0)
			return audio_bad(err, errlen,
					 "corrupt Ogg Opus stream (missing pages)");
		if (c->packets == 0)
			ret = check_opushead(c, &op, err, errlen);
		else if (c->packets == 1)
			ret = check_opustags(&op, err, errlen);
		else
			ret = check_audio_packet(c, &op, err, errlen);
		if (ret)
			return ret;
		if (c->packets >= 2)
			audio_done = 1;
		c->packets++;
	}
	if (first == 0 && (c->packets != 1 || ogg_page_packets(og) != 1 ||
			   granule != 0))
		return audio_bad(err, errlen,
				 "invalid Ogg Opus stream (OpusHead must be alone on the first page)");

	if (audio_done) {
		if (granule < 0 || granule < c->last_granule)
			return audio_bad(err, errlen,
					 "invalid Ogg Opus granule position on page %ld",
					 ogg_page_pageno(og));
		if (!c->audio_pages++) {
			/* A first page claiming fewer samples than it holds
			 * is invalid unless it also ends the stream; more
			 * than it holds means the stream starts late. */
			if (granule < c->samples && !ogg_page_eos(og))
				return audio_bad(err, errlen,
						 "invalid Ogg Opus granule position on the first audio page");
			if (granule > c->samples)
				c->start_offset = granule - c->samples;
		}
		c->last_granule = granule;
	}
	if (ogg_page_eos(og))
		c->eos = 1;
	return 0;
}

int audio_ogg_copy(const struct audio_source *src, audio_sink_fn sink,
		   void *sink_ctx, struct audio_result *res, char *err,
		   size_t errlen)
{
	struct ogg_check c;
	ogg_sync_state oy;
	ogg_page og;
	uint64_t off = 0, out = 0;
	int64_t dur;
	int ret = 0, r;

	memset(&c, 0, sizeof c);
	ogg_sync_init(&oy);
	for (;;) {
		size_t want = OGG_READ_CHUNK;
		char *buf;
		ssize_t n;

		r = ogg_sync_pageout(&oy, &og);
		if (r < 0) {
			ret = audio_bad(err, errlen,
					"corrupt Ogg data before byte %llu",
					(unsigned long long)off);
			goto out;
		}
		if (r > 0) {
			ret = check_page(&c, &og, err, errlen);
			if (ret)
				goto out;
			continue;
		}
		if (off >= src->size)
			break;
		if (src->size - off < want)
			want = (size_t)(src->size - off);
		buf = ogg_sync_buffer(&oy, (long)want);
		if (!buf) {
			ret = ENOMEM;
			goto out;
		}
		n = src->pread(src->ctx, buf, want, off);
		if (n < 0) {
			ret = (int)-n;
			goto out;
		}
		if (n == 0) /* shorter than announced */
			break;
		ret = sink(sink_ctx, buf, (size_t)n);
		if (ret)
			goto out;
		ogg_sync_wrote(&oy, (long)n);
		off += (uint64_t)n;
		out += (uint64_t)n;
	}

	if (c.packets < 2 || !c.eos) {
		ret = audio_bad(err, errlen,
				"truncated Ogg Opus stream (no end-of-stream page)");
		goto out;
	}
	if (oy.fill > oy.returned) {
		ret = audio_bad(err, errlen,
				"data after the end of the Ogg Opus stream");
		goto out;
	}
	dur = c.last_granule - c.start_offset - c.pre_skip;
	if (c.packets < 3 || dur <= 0) {
		ret = audio_bad(err, errlen, "Ogg Opus stream has no audio samples");
		goto out;
	}
	if (dur > OGG_MAX_DURATION) {
		ret = audio_bad(err, errlen,
				"implausible Ogg Opus granule position (over a week of audio)");
		goto out;
	}
	if (res) {
		uint64_t rate = c.input_rate ? c.input_rate : 48000;

		res->input = AUDIO_FORMAT_OPUS;
		res->source_rate = (uint32_t)rate;
		res->channels = c.channels;
		res->duration_ms = ((uint64_t)dur + 24) / 48;
		res->samples = ((uint64_t)dur * rate + 24000) / 48000;
		res->out_bytes = out;
	}
out:
	if (c.have_stream)
		ogg_stream_clear(&c.os);
	ogg_sync_clear(&oy);
	return ret;
}
