/* Audio: streaming WAV encoding (audio_wavstream_*), for recorders writing
 * into the mount over the length of a call.
 *
 * libsndfile reads from a whole file and cannot be pushed bytes, so the
 * stream decodes by itself: 16-bit PCM is little-endian samples, and G.711
 * is expanded here to the very values libsndfile gives (the unit tests
 * compare all 256 codes of both laws). Both paths then hand the same PCM to
 * the same push encoder (audio_encoder_*), which resamples itself where
 * needed, so a streamed encode is, byte for byte, audio_transcode() of the
 * final file. The header is read by audio.c's chunk walk: in prefix mode
 * while the file grows, in full against the final file at finish.
 *
 * Memory is bounded whatever the length: the start of the file is buffered
 * only until its header is parsed (WS_HEAD_MAX at most), then only a
 * partial frame is kept between pushes. */
#include "audio_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Header bytes buffered before giving up streaming: recorders write 44 to
 * a few hundred; a file whose header is longer is encoded at finish. */
#define WS_HEAD_MAX (64 * 1024)
#define WS_PCM_FRAMES 2048	/* decoded per encoder push */
/* Read from the final file at a time: whole frames of every format (1, 2
 * or 4 bytes). */
#define WS_READ_BYTES 8192

enum ws_state {
	WS_HEADER,	/* buffering the start of the file */
	WS_DATA,	/* header known: data bytes are encoded as they come */
	WS_IDLE,	/* not streamed (see audio_wavstream_push()): pushes
			   are only counted, finish() encodes everything */
	WS_DONE,	/* finish() was called */
};

struct audio_wavstream {
	struct audio_params params;
	int have_params;		/* 0: the encoder's defaults */
	audio_sink_fn sink;
	void *sink_ctx;
	enum ws_state state;
	uint64_t pushed;		/* bytes of the file pushed */
	unsigned char *head;		/* WS_HEADER: the file's first bytes */
	size_t head_len, head_cap;
	char reason[160];		/* why push() refused the header */
	struct audio_wav_info wi;	/* as streamed; data_len: the limit
					   the header declared, or UINT64_MAX */
	size_t frame_bytes;
	uint64_t encoded;		/* data bytes given to the encoder */
	unsigned char carry[4];		/* a partial frame, until completed */
	size_t carry_len;
	struct audio_encoder *enc;	/* from the time the format is known */
	int err;			/* sticky: the encoder's or sink's */
	int16_t g711[256];		/* expansion table for G.711 data */
	int16_t pcm[WS_PCM_FRAMES * 2];
};

/* ---- G.711 --------------------------------------------------------------- */

/* ITU-T G.711 mu-law: codes are stored inverted; the segment (exponent)
 * shifts a mantissa biased by 0x84 (33 << 2), which is then removed. */
int16_t audio_ulaw_expand(unsigned char code)
{
	int u = ~code & 0xff, t;

	t = ((u & 0x0f) << 3) + 0x84;
	t <<= (u & 0x70) >> 4;
	return (int16_t)(u & 0x80 ? 0x84 - t : t - 0x84);
}

/* ITU-T G.711 A-law: even bits are inverted (0x55); segment 0 is linear,
 * the others double; the sign bit set means positive. */
int16_t audio_alaw_expand(unsigned char code)
{
	int a = code ^ 0x55, seg = (a & 0x70) >> 4, t = (a & 0x0f) << 4;

	if (seg == 0)
		t += 8;
	else
		t = (t + 0x108) << (seg - 1);
	return (int16_t)(a & 0x80 ? t : -t);
}

/* ---- Encoding ------------------------------------------------------------ */

static int ws_start(struct audio_wavstream *w, const struct audio_wav_info *wi,
		    char *err, size_t errlen)
{
	int ret, i;

	w->wi = *wi;
	w->frame_bytes = (size_t)wi->channels * (size_t)wi->sample_bytes;
	for (i = 0; i < 256 && wi->sample_bytes == 1; i++)
		w->g711[i] = wi->tag == WAV_TAG_MULAW ?
				     audio_ulaw_expand((unsigned char)i) :
				     audio_alaw_expand((unsigned char)i);
	ret = audio_encoder_new(wi->rate, wi->channels,
				w->have_params ? &w->params : NULL, w->sink,
				w->sink_ctx, &w->enc, err, errlen);
	if (ret)
		return ret;
	w->state = WS_DATA;
	return 0;
}

/* Decodes `frames` whole frames at p and pushes them to the encoder. */
static int ws_encode(struct audio_wavstream *w, const unsigned char *p,
		     size_t frames)
{
	size_t ch = (size_t)w->wi.channels, i, n;

	while (frames) {
		n = frames < WS_PCM_FRAMES ? frames : WS_PCM_FRAMES;
		if (w->wi.sample_bytes == 2) {
			for (i = 0; i < n * ch; i++, p += 2)
				w->pcm[i] = (int16_t)(uint16_t)(p[0] |
								p[1] << 8);
		} else {
			for (i = 0; i < n * ch; i++)
				w->pcm[i] = w->g711[*p++];
		}
		w->err = audio_encoder_push(w->enc, w->pcm, n);
		if (w->err)
			return w->err;
		w->encoded += n * w->frame_bytes;
		frames -= n;
	}
	return 0;
}

/* Takes the next len bytes after the data start: whole frames are encoded,
 * a partial one is kept for the next push, and bytes past the data size
 * the header declared (when it declared one) are ignored. */
static int ws_data(struct audio_wavstream *w, const unsigned char *p,
		   size_t len)
{
	uint64_t room = w->wi.data_len - (w->encoded + w->carry_len);
	size_t n;
	int ret;

	if (w->err)
		return w->err;
	if (len > room)
		len = (size_t)room;
	if (w->carry_len) {
		n = w->frame_bytes - w->carry_len;
		if (n > len)
			n = len;
		memcpy(w->carry + w->carry_len, p, n);
		w->carry_len += n;
		p += n;
		len -= n;
		if (w->carry_len < w->frame_bytes)
			return 0;
		ret = ws_encode(w, w->carry, 1);
		if (ret)
			return ret;
		w->carry_len = 0;
	}
	n = len / w->frame_bytes;
	ret = ws_encode(w, p, n);
	if (ret)
		return ret;
	w->carry_len = len - n * w->frame_bytes;
	memcpy(w->carry, p + n * w->frame_bytes, w->carry_len);
	return 0;
}

/* ---- Header -------------------------------------------------------------- */

static ssize_t ws_head_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct audio_wavstream *w = ctx;

	if (off >= w->head_len)
		return 0;
	if (len > w->head_len - off)
		len = w->head_len - (size_t)off;
	memcpy(buf, w->head + off, len);
	return (ssize_t)len;
}

static void ws_idle(struct audio_wavstream *w)
{
	w->state = WS_IDLE;
	free(w->head);
	w->head = NULL;
	w->head_len = w->head_cap = 0;
}

/* Appends to the buffered start of the file and, once the header parses,
 * starts the encoder and moves on to the data. */
static int ws_header(struct audio_wavstream *w, const unsigned char *p,
		     size_t len, char *err, size_t errlen)
{
	struct audio_source src = { w, ws_head_pread, 0 };
	struct audio_wav_info wi;
	size_t take = WS_HEAD_MAX - w->head_len, off;
	int ret;

	if (take > len)
		take = len;
	if (w->head_len + take > w->head_cap) {
		size_t cap = (w->head_len + take) * 2;
		unsigned char *h;

		if (cap > WS_HEAD_MAX)
			cap = WS_HEAD_MAX;
		h = realloc(w->head, cap);
		if (!h) {
			ws_idle(w);
			return ENOMEM;
		}
		w->head = h;
		w->head_cap = cap;
	}
	memcpy(w->head + w->head_len, p, take);
	w->head_len += take;
	if (w->head_len < 12)
		return 0;

	switch (audio_sniff(w->head, 12)) {
	case AUDIO_FORMAT_WAV:
		break;
	case AUDIO_FORMAT_OPUS:
		audio_bad(w->reason, sizeof w->reason,
			  "not a WAV (Ogg input is not streamed)");
		goto refuse;
	default:
		audio_wav_head_bad(w->head, 12, w->reason, sizeof w->reason);
		goto refuse;
	}
	memset(&wi, 0, sizeof wi);
	src.size = w->head_len;
	ret = audio_wav_parse(&src, 1, &wi, w->reason, sizeof w->reason);
	if (ret == AUDIO_WAV_MORE && w->head_len < WS_HEAD_MAX)
		return 0;
	if (ret == EINVAL)
		goto refuse;
	if (ret) {
		/* Header too long, or data before fmt: this file is
		 * encoded from the final file at finish. */
		ws_idle(w);
		return ret > 0 ? ret : 0;
	}
	ret = ws_start(w, &wi, w->reason, sizeof w->reason);
	if (ret == EINVAL)
		goto refuse;
	if (ret) {
		ws_idle(w);
		return ret;
	}
	off = (size_t)wi.data_off;
	ret = ws_data(w, w->head + off, w->head_len - off);
	if (!ret)
		ret = ws_data(w, p + take, len - take);
	free(w->head);
	w->head = NULL;
	w->head_len = w->head_cap = 0;
	return ret;
refuse:
	ws_idle(w);
	return audio_bad(err, errlen, "%s", w->reason);
}

/* ---- Interface ----------------------------------------------------------- */

int audio_wavstream_new(const struct audio_params *params, audio_sink_fn sink,
			void *sink_ctx, struct audio_wavstream **out)
{
	struct audio_wavstream *w;
	int ret;

	*out = NULL;
	ret = audio_params_check(params, NULL, 0);
	if (ret)
		return ret;
	w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	if (params) {
		w->params = *params;
		w->have_params = 1;
	}
	w->sink = sink;
	w->sink_ctx = sink_ctx;
	w->state = WS_HEADER;
	*out = w;
	return 0;
}

int audio_wavstream_push(struct audio_wavstream *w, const void *buf,
			 size_t len, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (w->state == WS_DONE)
		return EINVAL;
	w->pushed += len;
	if (w->state == WS_IDLE)
		return w->reason[0] ? audio_bad(err, errlen, "%s", w->reason) :
				      0;
	/* An empty push changes nothing (and may come with a NULL buf). */
	if (w->state == WS_DATA)
		return len ? ws_data(w, buf, len) : w->err;
	return len ? ws_header(w, buf, len, err, errlen) : 0;
}

uint64_t audio_wavstream_pushed(const struct audio_wavstream *w)
{
	return w->pushed;
}

uint64_t audio_wavstream_data_offset(const struct audio_wavstream *w)
{
	return w->state == WS_DATA ? w->wi.data_off : 0;
}

int audio_wavstream_finish(struct audio_wavstream *w,
			   const struct audio_source *final,
			   struct audio_result *res, char *err, size_t errlen)
{
	struct audio_result local;
	struct audio_wav_info fi;
	unsigned char head[12], buf[WS_READ_BYTES];
	uint64_t off, end;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (w->state == WS_DONE)
		return EINVAL;
	ret = w->err;
	if (ret)
		goto out;

	/* Anything but a WAV is for audio_transcode(): it copies Ogg Opus
	 * and gives the canonical reasons for the rest. */
	ret = EAGAIN;
	if (final->size < sizeof head)
		goto out;
	ret = audio_read_full(final, head, sizeof head, 0);
	if (ret) {
		ret = ret > 0 ? ret : EIO;
		goto out;
	}
	if (audio_sniff(head, sizeof head) != AUDIO_FORMAT_WAV) {
		ret = EAGAIN;
		goto out;
	}

	res->input = AUDIO_FORMAT_WAV;
	memset(&fi, 0, sizeof fi);
	ret = audio_wav_parse(final, 0, &fi, err, errlen);
	if (ret)
		goto out;
	if (!w->enc) {
		ret = ws_start(w, &fi, err, errlen);
		if (ret)
			goto out;
	} else if (fi.tag != w->wi.tag || fi.rate != w->wi.rate ||
		   fi.channels != w->wi.channels ||
		   fi.data_off != w->wi.data_off || w->encoded > fi.data_len) {
		ret = EAGAIN;
		goto out;
	}

	/* The rest of the data, from the final file: a partial frame kept
	 * from the pushes is read again rather than trusted. */
	off = fi.data_off + w->encoded;
	end = fi.data_off + fi.data_len;
	while (off < end) {
		size_t n = sizeof buf;

		if (end - off < n)
			n = (size_t)(end - off);
		ret = audio_read_full(final, buf, n, off);
		if (ret < 0)
			ret = EIO; /* shorter than its announced size */
		if (ret)
			goto out;
		ret = ws_encode(w, buf, n / w->frame_bytes);
		if (ret)
			goto out;
		off += n;
	}
	ret = audio_encoder_finish(w->enc, res);
out:
	w->state = WS_DONE;
	if (ret) {
		enum audio_format in = res->input;

		memset(res, 0, sizeof *res);
		res->input = in;
	}
	return ret;
}

void audio_wavstream_free(struct audio_wavstream *w)
{
	if (!w)
		return;
	audio_encoder_free(w->enc);
	free(w->head);
	free(w);
}
