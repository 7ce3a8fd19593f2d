/* Audio: WAV variants recorders produce, encoded to Ogg Opus and decoded
 * back here with libogg + libopus to check what a listener would notice
 * (duration, channels, the tone itself); rejections with their reasons;
 * Ogg Opus passthrough; the streaming encoder against audio_transcode(). */
#include "callvault/audio.h"
#include "test.h"
#include "../../src/audio_int.h" /* G.711 expansion, checked directly */

#include <errno.h>
#include <math.h>
#include <ogg/ogg.h>
#include <opus.h>
#include <sndfile.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- memory source and sink ---------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void buf_le16(struct buf *b, uint32_t v)
{
	unsigned char x[2] = { v & 0xff, (v >> 8) & 0xff };

	buf_put(b, x, 2);
}

static void buf_le32(struct buf *b, uint32_t v)
{
	buf_le16(b, v & 0xffff);
	buf_le16(b, v >> 16);
}

static void set_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

struct mem {
	const unsigned char *p;
	size_t len;
	int fail_at;		/* preads reaching it fail; -1: never */
};

static ssize_t mem_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem *m = ctx;

	if (m->fail_at >= 0 && off + len > (uint64_t)m->fail_at)
		return -EIO;
	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - (size_t)off;
	/* Short reads on purpose: callers must loop. */
	if (len > 3000)
		len = 3000;
	memcpy(buf, m->p + off, len);
	return (ssize_t)len;
}

static int sink_buf(void *ctx, const void *d, size_t n)
{
	buf_put(ctx, d, n);
	return 0;
}

static int sink_full(void *ctx, const void *d, size_t n)
{
	(void)ctx;
	(void)d;
	(void)n;
	return ENOSPC;
}

static const struct audio_params params = { 16000, 3 };

struct run {
	int ret;
	char err[256];
	struct audio_result res;
	struct buf out;
};

static void run_bytes(struct run *r, const unsigned char *p, size_t len)
{
	struct mem m = { p, len, -1 };
	struct audio_source src = { &m, mem_pread, len };

	memset(r, 0, sizeof *r);
	r->ret = audio_transcode(&src, &params, sink_buf, &r->out, &r->res,
				 r->err, sizeof r->err);
}

/* ---- WAV builder --------------------------------------------------------- */

enum size_mode { SIZE_EXACT, SIZE_ZERO, SIZE_FFFF, SIZE_SOX };

struct wav_opts {
	uint16_t tag;		/* 1, 3, 6, 7; 0xfffe: extensible, `sub` */
	uint16_t sub;
	int channels;
	uint32_t rate;
	int bits;
	size_t frames;
	enum size_mode riff, data;
	int list_before, list_after, fact;
	int pad;		/* append a pad byte if the data is odd */
	double freq;		/* channel 0 tone; channel 1 is silent */
};

static int16_t sine(const struct wav_opts *o, size_t i)
{
	return (int16_t)lrint(16000.0 * sin(2 * M_PI * o->freq * (double)i /
					     o->rate));
}

/* G.711 from ITU-T reference algorithm. */
static unsigned char lin2ulaw(int16_t pcm)
{
	int x = pcm, sign = 0, exp, mant;

	if (x < 0) {
		x = -x;
		sign = 0x80;
	}
	if (x > 32635)
		x = 32635;
	x += 0x84;
	for (exp = 7; exp > 0 && !(x & (0x4000 >> (7 - exp))); exp--)
		;
	mant = (x >> (exp + 3)) & 0x0f;
	return (unsigned char)~(sign | exp << 4 | mant);
}

static unsigned char lin2alaw(int16_t pcm)
{
	int x = pcm, sign = 0x80, exp, mant;

	if (x < 0) {
		x = -x - 1;
		sign = 0;
	}
	if (x > 32767)
		x = 32767;
	if (x >= 256) {
		for (exp = 7; !(x & (0x4000 >> (7 - exp))); exp--)
			;
		mant = (x >> (exp + 3)) & 0x0f;
	} else {
		exp = 0;
		mant = x >> 4;
	}
	return (unsigned char)((sign | exp << 4 | mant) ^ 0x55);
}

static void put_chunk_list(struct buf *b)
{
	static const char info[] = "INFOISFT\x0e\0\0\0Lavf58.76.100\0";

	buf_put(b, "LIST", 4);
	buf_le32(b, sizeof info - 1);
	buf_put(b, info, sizeof info - 1);
}

static struct buf make_wav(const struct wav_opts *o)
{
	struct buf b = { 0 };
	uint16_t enc = o->tag == 0xfffe ? o->sub : o->tag;
	int bytes = o->bits / 8;
	size_t data_len = o->frames * (size_t)o->channels * (size_t)bytes;
	size_t riff_at, data_at;

	buf_put(&b, "RIFF", 4);
	riff_at = b.len;
	buf_le32(&b, 0);
	buf_put(&b, "WAVE", 4);
	if (o->list_before)
		put_chunk_list(&b);
	buf_put(&b, "fmt ", 4);
	buf_le32(&b, o->tag == 0xfffe ? 40 : 16);
	buf_le16(&b, o->tag);
	buf_le16(&b, (uint32_t)o->channels);
	buf_le32(&b, o->rate);
	buf_le32(&b, o->rate * (uint32_t)(o->channels * bytes));
	buf_le16(&b, (uint32_t)(o->channels * bytes));
	buf_le16(&b, (uint32_t)o->bits);
	if (o->tag == 0xfffe) {
		static const unsigned char tail[14] = {
			0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
			0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
		};

		buf_le16(&b, 22);
		buf_le16(&b, (uint32_t)o->bits);
		buf_le32(&b, o->channels == 2 ? 3 : 4);
		buf_le16(&b, enc);
		buf_put(&b, tail, sizeof tail);
	}
	if (o->fact) {
		buf_put(&b, "fact", 4);
		buf_le32(&b, 4);
		buf_le32(&b, (uint32_t)o->frames);
	}
	buf_put(&b, "data", 4);
	data_at = b.len;
	buf_le32(&b, 0);
	for (size_t i = 0; i < o->frames; i++) {
		for (int c = 0; c < o->channels; c++) {
			int16_t s = c == 0 ? sine(o, i) : 0;
			unsigned char x[4] = { 0 };

			if (enc == 7)
				x[0] = lin2ulaw(s);
			else if (enc == 6)
				x[0] = lin2alaw(s);
			else if (bytes == 1)
				x[0] = (unsigned char)((s >> 8) + 128);
			else if (bytes == 3) {
				x[1] = s & 0xff;
				x[2] = (unsigned char)(s >> 8);
			} else if (enc == 3) {
				float f = s / 32768.0f;

				memcpy(x, &f, 4);
			} else {
				x[0] = s & 0xff;
				x[1] = (unsigned char)(s >> 8);
			}
			buf_put(&b, x, (size_t)bytes);
		}
	}
	if (o->pad && (data_len & 1))
		buf_put(&b, "", 1);
	if (o->list_after)
		put_chunk_list(&b);

	switch (o->data) {
	case SIZE_EXACT: set_le32(b.p + data_at, (uint32_t)data_len); break;
	case SIZE_ZERO: set_le32(b.p + data_at, 0); break;
	case SIZE_FFFF: set_le32(b.p + data_at, 0xffffffffu); break;
	case SIZE_SOX: set_le32(b.p + data_at, 0x7ffff000u); break;
	}
	switch (o->riff) {
	case SIZE_EXACT: set_le32(b.p + riff_at, (uint32_t)(b.len - 8)); break;
	case SIZE_ZERO: set_le32(b.p + riff_at, 0); break;
	case SIZE_FFFF: set_le32(b.p + riff_at, 0xffffffffu); break;
	case SIZE_SOX: set_le32(b.p + riff_at, 0x7ffff024u); break;
	}
	return b;
}

static struct wav_opts base(uint32_t rate, int channels, size_t frames)
{
	struct wav_opts o = {
		.tag = 1, .channels = channels, .rate = rate, .bits = 16,
		.frames = frames, .freq = 440, .pad = 1,
	};
	return o;
}

/* ---- Ogg Opus decoder (independent of the module) ------------------------ */

struct decoded {
	int ok;
	int channels;
	uint32_t input_rate;
	int pre_skip;
	int64_t final_granule;
	size_t n;		/* frames at 48 kHz after pre-skip and trim */
	float *pcm;		/* interleaved */
};

static struct decoded decode(const unsigned char *p, size_t len)
{
	struct decoded d = { 0 };
	ogg_sync_state oy;
	ogg_stream_state os;
	ogg_page og;
	ogg_packet op;
	OpusDecoder *dec = NULL;
	size_t total = 0, cap = 0;
	float *all = NULL;
	int64_t last_granule = 0;
	int packets = 0, eos = 0, bad = 0, have_os = 0;

	ogg_sync_init(&oy);
	memcpy(ogg_sync_buffer(&oy, (long)len), p, len);
	ogg_sync_wrote(&oy, (long)len);
	while (!bad && ogg_sync_pageout(&oy, &og) == 1) {
		if (!have_os) {
			if (!ogg_page_bos(&og))
				bad = 1;
			ogg_stream_init(&os, ogg_page_serialno(&og));
			have_os = 1;
		}
		if (eos)
			bad = 1;
		ogg_stream_pagein(&os, &og);
		if (ogg_page_granulepos(&og) >= 0) {
			if (ogg_page_granulepos(&og) < last_granule)
				bad = 1;
			last_granule = ogg_page_granulepos(&og);
		}
		if (ogg_page_eos(&og))
			eos = 1;
		while (!bad && ogg_stream_packetout(&os, &op) == 1) {
			if (packets == 0) {
				if (op.bytes < 19 ||
				    memcmp(op.packet, "OpusHead", 8) ||
				    op.packet[8] != 1 || op.packet[18] != 0) {
					bad = 1;
					break;
				}
				d.channels = op.packet[9];
				d.pre_skip = op.packet[10] | op.packet[11] << 8;
				d.input_rate = (uint32_t)op.packet[12] |
					       (uint32_t)op.packet[13] << 8 |
					       (uint32_t)op.packet[14] << 16 |
					       (uint32_t)op.packet[15] << 24;
				dec = opus_decoder_create(48000, d.channels,
							  NULL);
			} else if (packets == 1) {
				if (op.bytes < 16 ||
				    memcmp(op.packet, "OpusTags", 8))
					bad = 1;
			} else {
				size_t ch = (size_t)d.channels;

				if (total + 5760 > cap) {
					cap = (total + 5760) * 2;
					float *grown = realloc(
						all, cap * ch * sizeof *all);

					if (!grown)
						abort();
					all = grown;
				}
				int n = opus_decode_float(
					dec, op.packet, (opus_int32)op.bytes,
					all + total * (size_t)d.channels, 5760,
					0);
				if (n < 0)
					bad = 1;
				else
					total += (size_t)n;
			}
			packets++;
		}
	}
	d.final_granule = last_granule;
	if (!bad && eos && packets > 2 && last_granule > d.pre_skip &&
	    (size_t)last_granule <= total) {
		d.ok = 1;
		d.n = (size_t)(last_granule - d.pre_skip);
		d.pcm = all;
		memmove(all, all + (size_t)d.pre_skip * (size_t)d.channels,
			d.n * (size_t)d.channels * sizeof *all);
		all = NULL;
	}
	free(all);
	if (dec)
		opus_decoder_destroy(dec);
	if (have_os)
		ogg_stream_clear(&os);
	ogg_sync_clear(&oy);
	return d;
}

/* Power of channel c at frequency f (Goertzel), normalised per sample. */
static double tone_power(const struct decoded *d, int c, double f)
{
	double w = 2 * M_PI * f / 48000, k = 2 * cos(w), s1 = 0, s2 = 0;

	for (size_t i = 0; i < d->n; i++) {
		double s = d->pcm[i * (size_t)d->channels + (size_t)c] +
			   k * s1 - s2;
		s2 = s1;
		s1 = s;
	}
	return (s1 * s1 + s2 * s2 - k * s1 * s2) / ((double)d->n * d->n);
}

static double rms(const struct decoded *d, int c)
{
	double sum = 0;

	for (size_t i = 0; i < d->n; i++) {
		double v = d->pcm[i * (size_t)d->channels + (size_t)c];
		sum += v * v;
	}
	return d->n ? sqrt(sum / (double)d->n) : 0;
}

/* Encodes o, and checks what a listener would notice: a valid Ogg Opus
 * stream, the duration to the millisecond, the channels, the rate, and the
 * 440 Hz tone at about the right level (16000/32768 peak = 0.345 RMS). */
static void check_wav_case(const struct wav_opts *o)
{
	struct buf w = make_wav(o);
	struct run r, again;
	struct decoded d;
	double exp_ms = (double)o->frames * 1000.0 / o->rate;

	run_bytes(&r, w.p, w.len);
	CHECK_INT(r.ret, 0);
	if (r.ret)
		fprintf(stderr, "  rate %u: %s\n", (unsigned)o->rate, r.err);
	CHECK_INT(r.res.input, AUDIO_FORMAT_WAV);
	CHECK_INT(r.res.source_rate, o->rate);
	CHECK_INT(r.res.channels, o->channels);
	CHECK_INT(r.res.samples, o->frames);
	CHECK_INT(r.res.duration_ms, (uint64_t)llround(exp_ms));
	CHECK_INT(r.res.out_bytes, r.out.len);

	d = decode(r.out.p, r.out.len);
	CHECK(d.ok);
	if (d.ok) {
		double ms = (double)d.n / 48.0;
		double p440 = tone_power(&d, 0, 440);
		double p1k = tone_power(&d, 0, 1000);
		double level = rms(&d, 0);

		CHECK_INT(d.channels, o->channels);
		CHECK_INT(d.input_rate, o->rate);
		CHECK(fabs(ms - exp_ms) < 1.0);
		CHECK(level > 0.345 / 2 && level < 0.345 * 2);
		CHECK(p440 > 100 * p1k);
		if (o->channels == 2)
			CHECK(rms(&d, 1) < level / 10);
	}
	free(d.pcm);

	/* The output is itself accepted as Ogg Opus input, same duration. */
	run_bytes(&again, r.out.p, r.out.len);
	CHECK_INT(again.ret, 0);
	CHECK_INT(again.res.input, AUDIO_FORMAT_OPUS);
	CHECK_INT(again.res.duration_ms, r.res.duration_ms);
	CHECK_INT(again.res.source_rate, o->rate);
	CHECK_INT(again.res.channels, o->channels);
	CHECK(again.out.len == r.out.len &&
	      memcmp(again.out.p, r.out.p, r.out.len) == 0);

	free(again.out.p);
	free(r.out.p);
	free(w.p);
}

/* ---- accepted WAV -------------------------------------------------------- */

static void pcm16_mono_8k(void)
{
	struct wav_opts o = base(8000, 1, 9877);

	check_wav_case(&o);
}

static void pcm16_stereo_16k(void)
{
	struct wav_opts o = base(16000, 2, 16000 * 3 / 2 + 7);

	check_wav_case(&o);
}

static void mulaw_8k(void)
{
	struct wav_opts o = base(8000, 1, 12345);

	o.tag = 7;
	o.bits = 8;
	o.fact = 1;
	check_wav_case(&o);
}

static void alaw_8k(void)
{
	struct wav_opts o = base(8000, 1, 8000);

	o.tag = 6;
	o.bits = 8;
	check_wav_case(&o);
}

static void alaw_stereo_size_zero(void)
{
	struct wav_opts o = base(8000, 2, 8001);

	o.tag = 6;
	o.bits = 8;
	o.riff = o.data = SIZE_ZERO;
	check_wav_case(&o);
}

static void rate_44100_resampled(void)
{
	struct wav_opts o = base(44100, 1, 44100 + 4411);

	check_wav_case(&o);
}

static void rate_48000(void)
{
	struct wav_opts o = base(48000, 1, 48000 + 13);

	check_wav_case(&o);
}

static void other_rates(void)
{
	static const uint32_t rates[] = { 11025, 12000, 22050, 24000, 32000,
					  9600 };

	for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
		struct wav_opts o = base(rates[i], i % 2 ? 2 : 1,
					 rates[i] + 333);

		check_wav_case(&o);
	}
}

static void extensible(void)
{
	struct wav_opts o = base(16000, 2, 16000);

	o.tag = 0xfffe;
	o.sub = 1;
	check_wav_case(&o);
	o = base(8000, 1, 8000);
	o.tag = 0xfffe;
	o.sub = 7;
	o.bits = 8;
	check_wav_case(&o);
}

static void list_before_and_after_data(void)
{
	struct wav_opts o = base(8000, 1, 8000);

	o.list_before = 1;
	check_wav_case(&o);
	o.list_before = 0;
	o.list_after = 1;
	check_wav_case(&o);
	o.list_before = 1;
	o.fact = 1;
	check_wav_case(&o);
}

static void header_sizes(void)
{
	static const enum size_mode modes[] = { SIZE_EXACT, SIZE_ZERO,
						SIZE_FFFF, SIZE_SOX };

	for (size_t i = 0; i < 4; i++) {
		for (size_t j = 0; j < 4; j++) {
			struct wav_opts o = base(8000, 1, 4000 + 3 * i + j);

			o.riff = modes[i];
			o.data = modes[j];
			check_wav_case(&o);
		}
	}
}

/* A mu-law file with an odd sample count and its pad byte, sizes exact;
 * 16-bit PCM with sizes 0 (never patched) and a stray odd byte at the end:
 * only whole samples are decoded. */
static void odd_length_pad_byte(void)
{
	struct wav_opts o = base(8000, 1, 8001);
	struct buf w;
	struct run r;
	struct decoded d;

	o.tag = 7;
	o.bits = 8;
	check_wav_case(&o);
	o = base(8000, 1, 8000);
	o.riff = o.data = SIZE_ZERO;
	w = make_wav(&o);
	buf_put(&w, "", 1);
	run_bytes(&r, w.p, w.len);
	CHECK_INT(r.ret, 0);
	CHECK_INT(r.res.samples, 8000);
	CHECK_INT(r.res.duration_ms, 1000);
	d = decode(r.out.p, r.out.len);
	CHECK(d.ok);
	CHECK_INT(d.n, 48000);
	free(d.pcm);
	free(r.out.p);
	free(w.p);
}

/* No parameters: the defaults (16 kbit/s per channel) are used. */
static void default_params(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 10);
	struct buf w = make_wav(&o), out = { 0 };
	struct mem m = { w.p, w.len, -1 };
	struct audio_source src = { &m, mem_pread, w.len };
	struct audio_result res;
	char err[128];

	CHECK_INT(audio_transcode(&src, NULL, sink_buf, &out, &res, err,
				  sizeof err),
		  0);
	CHECK_INT(res.duration_ms, 10000);
	/* About 16 kbit/s: 20 KB for 10 s, with slack for VBR and Ogg. */
	CHECK(out.len > 10000 && out.len < 30000);
	free(out.p);
	free(w.p);
}

static void fmt_after_data(void)
{
	struct wav_opts o = base(8000, 1, 8000);
	struct buf w = make_wav(&o), v = { 0 };
	struct run r;

	/* Move fmt (24 bytes at 12) after data. */
	buf_put(&v, w.p, 12);
	buf_put(&v, w.p + 36, w.len - 36);
	buf_put(&v, w.p + 12, 24);
	run_bytes(&r, v.p, v.len);
	CHECK_INT(r.ret, 0);
	CHECK_INT(r.res.duration_ms, 1000);
	free(r.out.p);
	free(v.p);
	free(w.p);
}

/* Ten minutes of 8 kHz mono: the whole path, and the output is about the
 * size 16 kbit/s gives (about 1.2 MB). */
static void long_input(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 600);
	struct buf w = make_wav(&o);
	struct run r;

	run_bytes(&r, w.p, w.len);
	CHECK_INT(r.ret, 0);
	CHECK_INT(r.res.duration_ms, 600000);
	CHECK(r.out.len > 600 * 1000 && r.out.len < 600 * 2500);
	free(r.out.p);
	free(w.p);
}

/* ---- push encoder -------------------------------------------------------- */

static void push_equals_transcode(void)
{
	struct wav_opts o = base(22050, 2, 22050 * 2 + 5);
	struct buf w = make_wav(&o), out = { 0 };
	struct run r;
	struct audio_encoder *e = NULL;
	struct audio_result res;
	char err[128];
	const int16_t *pcm = (const int16_t *)(w.p + 44);
	size_t done = 0, step = 1;

	run_bytes(&r, w.p, w.len);
	CHECK_INT(r.ret, 0);
	CHECK_INT(audio_encoder_new(22050, 2, &params, sink_buf, &out, &e,
				    err, sizeof err), 0);
	while (e && done < o.frames) {
		size_t n = step < o.frames - done ? step : o.frames - done;

		CHECK_INT(audio_encoder_push(e, pcm + done * 2, n), 0);
		done += n;
		step = step * 3 % 1000 + 1;
	}
	if (e) {
		CHECK_INT(audio_encoder_finish(e, &res), 0);
		CHECK_INT(res.samples, o.frames);
		CHECK_INT(res.duration_ms, r.res.duration_ms);
		CHECK_INT(res.out_bytes, out.len);
	}
	audio_encoder_free(e);
	/* Same code, same bytes, however the PCM was split. */
	CHECK(out.len == r.out.len && memcmp(out.p, r.out.p, out.len) == 0);
	free(out.p);
	free(r.out.p);
	free(w.p);
}

static void push_nothing_is_einval(void)
{
	struct audio_encoder *e = NULL;
	struct audio_result res;
	struct buf out = { 0 };
	char err[128];

	CHECK_INT(audio_encoder_new(8000, 1, &params, sink_buf, &out, &e, err,
				    sizeof err), 0);
	if (e)
		CHECK_INT(audio_encoder_finish(e, &res), EINVAL);
	audio_encoder_free(e);
	CHECK_INT(out.len, 0);
	CHECK_INT(audio_encoder_new(96000, 1, &params, sink_buf, &out, &e, err,
				    sizeof err), EINVAL);
	CHECK(e == NULL);
	CHECK(strstr(err, "96000") != NULL);
	free(out.p);
}

/* ---- streaming WAV encoder ----------------------------------------------- */

/* What incoming/ keeps between the bytes it pushes and the end of the
 * file, so that late header patches and appended chunks are not pushed. */
#define LAG 65536

struct srun {
	int push_ret, ret;
	char err[256];
	struct audio_result res;
	struct buf out;
	size_t early;		/* output bytes before finish(): streamed */
};

/* Pushes p[0..len) to a new stream in pieces of `piece` bytes (0: random
 * sizes from 1 to 5000), then finishes against `final` unless a push
 * failed. */
static void run_stream(struct srun *s, const unsigned char *p, size_t len,
		       size_t piece, const unsigned char *final,
		       size_t final_len)
{
	struct mem m = { final, final_len, -1 };
	struct audio_source src = { &m, mem_pread, final_len };
	struct audio_wavstream *w = NULL;
	uint32_t x = 2024;
	size_t done = 0;

	memset(s, 0, sizeof *s);
	CHECK_INT(audio_wavstream_new(&params, sink_buf, &s->out, &w), 0);
	if (!w) {
		s->ret = -1;
		return;
	}
	while (done < len && !s->push_ret) {
		size_t n = piece;

		if (!n) {
			x = x * 1103515245 + 12345;
			n = 1 + (x >> 16) % 5000;
		}
		if (n > len - done)
			n = len - done;
		s->push_ret = audio_wavstream_push(w, p + done, n, s->err,
						   sizeof s->err);
		done += n;
		CHECK_INT(audio_wavstream_pushed(w), done);
	}
	s->early = s->out.len;
	s->ret = s->push_ret;
	if (!s->push_ret)
		s->ret = audio_wavstream_finish(w, &src, &s->res, s->err,
						sizeof s->err);
	audio_wavstream_free(w);
}

/* The stream gave what audio_transcode() gave for the final file: the
 * same bytes and the same result. */
static void check_same(const struct srun *s, const struct run *t)
{
	CHECK_INT(t->ret, 0);
	CHECK_INT(s->ret, 0);
	if (s->ret)
		fprintf(stderr, "  stream: %d %s\n", s->ret, s->err);
	CHECK_INT(s->res.input, t->res.input);
	CHECK_INT(s->res.source_rate, t->res.source_rate);
	CHECK_INT(s->res.channels, t->res.channels);
	CHECK_INT(s->res.duration_ms, t->res.duration_ms);
	CHECK_INT(s->res.samples, t->res.samples);
	CHECK_INT(s->res.out_bytes, t->res.out_bytes);
	CHECK_INT(s->out.len, t->out.len);
	CHECK(s->out.len == t->out.len &&
	      memcmp(s->out.p, t->out.p, t->out.len) == 0);
}

static const size_t pieces[] = { 320, 32768, 0 };

/* Ogg pages in o from byte `from` on (a page boundary), or -1 if that is
 * not where pages are. */
static int pages_from(const struct buf *o, size_t from)
{
	int n = 0;

	while (from < o->len) {
		size_t body = 0, nseg;

		if (o->len - from < 27 || memcmp(o->p + from, "OggS", 4) != 0)
			return -1;
		nseg = o->p[from + 26];
		if (o->len - from < 27 + nseg)
			return -1;
		for (size_t k = 0; k < nseg; k++)
			body += o->p[from + 27 + k];
		from += 27 + nseg + body;
		n++;
	}
	return from == o->len ? n : -1;
}

/* What finish() still had to write: the pages of the last LAG bytes of
 * audio (8 s of 8 kHz G.711 at most: two pages of 4.92 s), the page being
 * filled and the last one. The rest was encoded and written while the
 * file was pushed. */
#define FINISH_PAGES_MAX 4

/* Streams `live` (the file as the recorder has it while writing) but for
 * the last LAG bytes of `fin`, in each piece size, and finishes against
 * `fin`: output identical to audio_transcode(fin), and all but the last
 * few pages produced before finish(). */
static void check_stream(const struct buf *live, const struct buf *fin)
{
	struct run t;
	struct srun s;

	CHECK(fin->len > 2 * LAG);
	run_bytes(&t, fin->p, fin->len);
	for (size_t i = 0; i < 3; i++) {
		run_stream(&s, live->p, fin->len - LAG, pieces[i], fin->p,
			   fin->len);
		check_same(&s, &t);
		CHECK(s.early > 0);
		CHECK(pages_from(&t.out, s.early) >= 1 &&
		      pages_from(&t.out, s.early) <= FINISH_PAGES_MAX);
		free(s.out.p);
	}
	free(t.out.p);
}

/* Asterisk: sizes left at 0 while recording, patched at close(). */
static void asterisk_pattern(struct wav_opts o)
{
	struct buf live, fin;

	o.riff = o.data = SIZE_ZERO;
	live = make_wav(&o);
	o.riff = o.data = SIZE_EXACT;
	fin = make_wav(&o);
	check_stream(&live, &fin);
	free(live.p);
	free(fin.p);
}

/* FreeSWITCH-like: sizes 0xFFFFFFFF while recording; at close() a LIST
 * chunk is appended after the data and the header rewritten. */
static void freeswitch_pattern(struct wav_opts o)
{
	struct buf live, fin;

	o.riff = o.data = SIZE_FFFF;
	live = make_wav(&o);
	o.riff = o.data = SIZE_EXACT;
	o.list_after = 1;
	fin = make_wav(&o);
	check_stream(&live, &fin);
	free(live.p);
	free(fin.p);
}

static void stream_patterns(struct wav_opts o)
{
	asterisk_pattern(o);
	freeswitch_pattern(o);
}

static void wavstream_pcm16_mono_8k(void)
{
	stream_patterns(base(8000, 1, 8000 * 9 + 3));
}

static void wavstream_pcm16_stereo_16k(void)
{
	stream_patterns(base(16000, 2, 16000 * 3 + 1));
}

static void wavstream_mulaw(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 17 + 1);

	o.tag = 7;
	o.bits = 8;
	o.fact = 1;
	stream_patterns(o);
}

static void wavstream_alaw(void)
{
	struct wav_opts o = base(8000, 2, 8000 * 9 + 1);

	o.tag = 6;
	o.bits = 8;
	o.list_before = 1;
	stream_patterns(o);
}

static void wavstream_44100_resampled(void)
{
	stream_patterns(base(44100, 1, 44100 * 2 + 7));
}

static void wavstream_extensible_22050_stereo(void)
{
	struct wav_opts o = base(22050, 2, 22050 * 2 + 9);

	o.tag = 0xfffe;
	o.sub = 1;
	stream_patterns(o);
}

/* Every placeholder size a writer leaves while streaming (and an exact
 * one) is followed; the final header is exact. */
static void wavstream_header_sizes(void)
{
	static const enum size_mode modes[] = { SIZE_ZERO, SIZE_FFFF,
						SIZE_SOX, SIZE_EXACT };

	for (size_t i = 0; i < 4; i++) {
		struct wav_opts o = base(8000, 1, 8000 * 9 + 1);
		struct buf live, fin;

		o.riff = o.data = modes[i];
		live = make_wav(&o);
		o.riff = o.data = SIZE_EXACT;
		fin = make_wav(&o);
		check_stream(&live, &fin);
		free(live.p);
		free(fin.p);
	}
}

/* An exact data size is where the audio stops even while streaming: a
 * LIST chunk after it, pushed too, is not taken for samples. */
static void wavstream_exact_size_stops(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 3);
	struct buf w;
	struct run t;
	struct srun s;

	o.list_after = 1;
	w = make_wav(&o);
	run_bytes(&t, w.p, w.len);
	run_stream(&s, w.p, w.len, 320, w.p, w.len);
	check_same(&s, &t);
	free(s.out.p);
	free(t.out.p);
	free(w.p);
}

/* finish() alone, or after part of the header, encodes the whole file;
 * so does a file whose data comes before fmt (not streamable). */
static void wavstream_finish_does_all(void)
{
	struct wav_opts o = base(16000, 1, 16000 * 2 + 1);
	struct buf w = make_wav(&o), v = { 0 };
	struct run t;
	struct srun s;

	run_bytes(&t, w.p, w.len);
	run_stream(&s, w.p, 0, 320, w.p, w.len);
	check_same(&s, &t);
	free(s.out.p);
	run_stream(&s, w.p, 30, 7, w.p, w.len);
	check_same(&s, &t);
	CHECK_INT(s.early, 0);
	free(s.out.p);
	free(t.out.p);
	/* Empty pushes, before and after the header, change nothing. */
	{
		struct audio_wavstream *st = NULL;
		struct mem m = { w.p, w.len, -1 };
		struct audio_source src = { &m, mem_pread, w.len };
		struct buf out = { 0 };
		char err[256];

		run_bytes(&t, w.p, w.len);
		CHECK_INT(audio_wavstream_new(&params, sink_buf, &out, &st),
			  0);
		CHECK_INT(audio_wavstream_push(st, NULL, 0, err, sizeof err),
			  0);
		CHECK_INT(audio_wavstream_push(st, w.p, 5000, err, sizeof err),
			  0);
		CHECK_INT(audio_wavstream_push(st, NULL, 0, err, sizeof err),
			  0);
		CHECK_INT(audio_wavstream_pushed(st), 5000);
		CHECK_INT(audio_wavstream_finish(st, &src, &s.res, err,
						 sizeof err),
			  0);
		CHECK(out.len == t.out.len &&
		      memcmp(out.p, t.out.p, out.len) == 0);
		audio_wavstream_free(st);
		free(out.p);
		free(t.out.p);
	}

	buf_put(&v, w.p, 12);
	buf_put(&v, w.p + 36, w.len - 36);
	buf_put(&v, w.p + 12, 24);
	run_bytes(&t, v.p, v.len);
	run_stream(&s, v.p, v.len - 100, 320, v.p, v.len);
	check_same(&s, &t);
	CHECK_INT(s.early, 0);
	free(s.out.p);
	free(t.out.p);
	free(v.p);
	free(w.p);
}

/* Streamed bytes that cannot start the final file's audio: EAGAIN, and
 * the final file itself still transcodes (the caller's fallback). */
static void expect_again(const struct buf *live, size_t len,
			 const struct buf *fin)
{
	struct run t;
	struct srun s;

	run_stream(&s, live->p, len, 4096, fin->p, fin->len);
	CHECK_INT(s.push_ret, 0);
	CHECK(s.early > 0);
	CHECK_INT(s.ret, EAGAIN);
	CHECK_INT(s.res.out_bytes, 0);
	run_bytes(&t, fin->p, fin->len);
	CHECK_INT(t.ret, 0);
	free(t.out.p);
	free(s.out.p);
}

static void wavstream_again(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 9);
	struct buf live, fin;

	/* The header rewritten with another rate. */
	o.riff = o.data = SIZE_ZERO;
	live = make_wav(&o);
	fin = make_wav(&o);
	set_le32(fin.p + 24, 16000);
	set_le32(fin.p + 28, 32000);
	set_le32(fin.p + 40, (uint32_t)(fin.len - 44));
	expect_again(&live, fin.len - LAG, &fin);
	free(fin.p);

	/* More pushed than the final data holds: the appended LIST chunk
	 * (no lag kept) was taken for samples. */
	free(live.p);
	o.list_after = 1;
	live = make_wav(&o);
	o.riff = o.data = SIZE_EXACT;
	fin = make_wav(&o);
	expect_again(&live, live.len, &fin);
	free(fin.p);
	free(live.p);

	/* mu-law, odd sample count: the pad byte is not a sample. */
	o = base(8000, 1, 8000 * 9 + 1);
	o.tag = 7;
	o.bits = 8;
	o.riff = o.data = SIZE_ZERO;
	live = make_wav(&o);
	o.riff = o.data = SIZE_EXACT;
	fin = make_wav(&o);
	expect_again(&live, live.len, &fin);
	free(fin.p);
	free(live.p);

	/* The data start moved: a LIST chunk inserted before data. */
	o = base(8000, 1, 8000 * 9);
	o.riff = o.data = SIZE_ZERO;
	live = make_wav(&o);
	o.riff = o.data = SIZE_EXACT;
	o.list_before = 1;
	fin = make_wav(&o);
	expect_again(&live, fin.len - LAG, &fin);
	free(fin.p);
	free(live.p);

	/* Stereo become mono. */
	o = base(8000, 2, 8000 * 9);
	o.riff = o.data = SIZE_ZERO;
	live = make_wav(&o);
	fin = make_wav(&o);
	fin.p[22] = 1;
	expect_again(&live, fin.len - LAG, &fin);
	free(fin.p);
	free(live.p);
}

/* A header push() refuses gives its reason, again on later pushes; at
 * finish() the final file is judged afresh, as audio_transcode() would. */
static void wavstream_refused(void)
{
	struct wav_opts o = base(8000, 1, 8000);
	struct buf f, w = make_wav(&o), ogg;
	struct mem m = { w.p, w.len, -1 };
	struct audio_source src = { &m, mem_pread, w.len };
	struct audio_wavstream *s = NULL;
	struct audio_result res;
	struct buf out = { 0 };
	struct run t;
	char err[256];

	o.tag = 3;
	o.bits = 32;
	f = make_wav(&o);
	CHECK_INT(audio_wavstream_new(&params, sink_buf, &out, &s), 0);
	CHECK_INT(audio_wavstream_push(s, f.p, 100, err, sizeof err), EINVAL);
	CHECK(strstr(err, "IEEE float") != NULL);
	CHECK_INT(audio_wavstream_push(s, f.p + 100, 100, err, sizeof err),
		  EINVAL);
	CHECK(strstr(err, "IEEE float") != NULL);
	CHECK_INT(audio_wavstream_pushed(s), 200);
	m.p = f.p;
	m.len = src.size = f.len;
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err),
		  EINVAL);
	run_bytes(&t, f.p, f.len);
	CHECK_STR(err, t.err);
	CHECK_INT(out.len, 0);
	audio_wavstream_free(s);
	free(t.out.p);

	/* Not audio while streaming, a WAV at the end: encoded whole. */
	run_bytes(&t, w.p, w.len);
	CHECK_INT(audio_wavstream_new(&params, sink_buf, &out, &s), 0);
	CHECK_INT(audio_wavstream_push(s, "ID3\x04junkjunkjunk", 16, err,
				       sizeof err),
		  EINVAL);
	CHECK(strstr(err, "not audio") != NULL);
	m.p = w.p;
	m.len = src.size = w.len;
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err), 0);
	CHECK(out.len == t.out.len && memcmp(out.p, t.out.p, out.len) == 0);
	CHECK_INT(res.out_bytes, t.res.out_bytes);
	audio_wavstream_free(s);

	/* Ogg Opus is not streamed, and is left to audio_transcode(). */
	ogg = t.out;
	out.len = 0;
	CHECK_INT(audio_wavstream_new(&params, sink_buf, &out, &s), 0);
	CHECK_INT(audio_wavstream_push(s, ogg.p, ogg.len, err, sizeof err),
		  EINVAL);
	CHECK(strstr(err, "Ogg") != NULL);
	m.p = ogg.p;
	m.len = src.size = ogg.len;
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err),
		  EAGAIN);
	audio_wavstream_free(s);

	/* An empty final file too. */
	CHECK_INT(audio_wavstream_new(&params, sink_buf, &out, &s), 0);
	src.size = 0;
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err),
		  EAGAIN);
	/* Once finished, a stream takes nothing more. */
	CHECK_INT(audio_wavstream_push(s, w.p, 10, err, sizeof err), EINVAL);
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err),
		  EINVAL);
	audio_wavstream_free(s);

	{
		struct audio_params bad = { 16000, 11 };

		CHECK_INT(audio_wavstream_new(&bad, sink_buf, &out, &s),
			  EINVAL);
		CHECK(s == NULL);
	}
	CHECK_INT(out.len, 0);
	free(out.p);
	free(ogg.p);
	free(f.p);
	free(w.p);
}

/* The sink's error comes back from push() and stays. */
static void wavstream_sink_error(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 3);
	struct buf w = make_wav(&o);
	struct mem m = { w.p, w.len, -1 };
	struct audio_source src = { &m, mem_pread, w.len };
	struct audio_wavstream *s = NULL;
	struct audio_result res;
	char err[256];

	CHECK_INT(audio_wavstream_new(NULL, sink_full, NULL, &s), 0);
	CHECK_INT(audio_wavstream_push(s, w.p, w.len, err, sizeof err),
		  ENOSPC);
	CHECK_INT(audio_wavstream_push(s, w.p, 10, err, sizeof err), ENOSPC);
	CHECK_INT(audio_wavstream_finish(s, &src, &res, err, sizeof err),
		  ENOSPC);
	audio_wavstream_free(s);
	/* A source failing at finish. */
	{
		struct buf out = { 0 };

		CHECK_INT(audio_wavstream_new(NULL, sink_buf, &out, &s), 0);
		CHECK_INT(audio_wavstream_push(s, w.p, 1000, err, sizeof err),
			  0);
		m.fail_at = (int)w.len - 10;
		CHECK_INT(audio_wavstream_finish(s, &src, &res, err,
						 sizeof err),
			  EIO);
		CHECK_INT(res.out_bytes, 0);
		audio_wavstream_free(s);
		free(out.p);
	}
	free(w.p);
}

/* libsndfile's decoding of a one-sample-per-code G.711 WAV. */
static void sndfile_decode(const unsigned char *p, size_t len, short *pcm,
			   size_t n)
{
	FILE *f = tmpfile();
	SF_INFO info = { 0 };
	SNDFILE *sf;

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(p, 1, len, f) == len && fflush(f) == 0);
	rewind(f); /* libsndfile takes the fd's offset as the file's start */
	sf = sf_open_fd(fileno(f), SFM_READ, &info, 0);
	CHECK(sf != NULL);
	if (sf) {
		CHECK_INT(sf_readf_short(sf, pcm, (sf_count_t)n), n);
		sf_close(sf);
	}
	fclose(f);
}

/* Our G.711 expansion is libsndfile's, for every code of both laws; and a
 * stream of every code encodes as audio_transcode() does. */
static void wavstream_g711_tables(void)
{
	static const uint16_t tags[] = { 7, 6 };

	for (size_t k = 0; k < 2; k++) {
		struct wav_opts o = base(8000, 1, 256);
		struct buf w;
		short ref[256];
		struct run t;
		struct srun s;
		int same = 0;	/* codes that differ */

		o.tag = tags[k];
		o.bits = 8;
		w = make_wav(&o);
		for (size_t i = 0; i < o.frames; i++)
			w.p[44 + i] = (unsigned char)i;
		memset(ref, 0, sizeof ref);
		sndfile_decode(w.p, w.len, ref, 256);
		free(w.p);
		o.frames = 256 * 400;
		w = make_wav(&o);
		for (size_t i = 0; i < o.frames; i++)
			w.p[44 + i] = (unsigned char)i;
		for (int c = 0; c < 256; c++) {
			unsigned char code = (unsigned char)c;
			int16_t v = tags[k] == 7 ? audio_ulaw_expand(code) :
						   audio_alaw_expand(code);

			if (v != ref[c] && same++ < 4)
				fprintf(stderr,
					"  law %u code %d: %d, libsndfile %d\n",
					tags[k], c, v, ref[c]);
		}
		CHECK_INT(same, 0);
		/* Spot values from ITU-T G.711 (as 16-bit). */
		if (tags[k] == 7) {
			CHECK_INT(audio_ulaw_expand(0x00), -32124);
			CHECK_INT(audio_ulaw_expand(0x80), 32124);
			CHECK_INT(audio_ulaw_expand(0xff), 0);
			CHECK_INT(audio_ulaw_expand(0x7f), 0);
		} else {
			CHECK_INT(audio_alaw_expand(0xd5), 8);
			CHECK_INT(audio_alaw_expand(0x55), -8);
			CHECK_INT(audio_alaw_expand(0xaa), 32256);
			CHECK_INT(audio_alaw_expand(0x2a), -32256);
		}
		run_bytes(&t, w.p, w.len);
		run_stream(&s, w.p, w.len - LAG, 333, w.p, w.len);
		check_same(&s, &t);
		free(s.out.p);
		free(t.out.p);
		free(w.p);
	}
}

/* Ten minutes in 320-byte pushes (20 ms of 8 kHz audio each, as a
 * recorder writes): memory stays bounded, the result is the transcode's. */
static void wavstream_long_small_pushes(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 600);
	struct buf w;
	struct run t;
	struct srun s;

	o.riff = o.data = SIZE_ZERO;
	w = make_wav(&o);
	run_bytes(&t, w.p, w.len);
	run_stream(&s, w.p, w.len - LAG, 320, w.p, w.len);
	check_same(&s, &t);
	CHECK_INT(s.res.duration_ms, 600000);
	/* 124 pages in all: finish() wrote only the last few. */
	CHECK(pages_from(&t.out, 0) > 100);
	CHECK(pages_from(&t.out, s.early) >= 1 &&
	      pages_from(&t.out, s.early) <= FINISH_PAGES_MAX);
	free(s.out.p);
	free(t.out.p);
	free(w.p);
}

/* ---- rejections ---------------------------------------------------------- */

static void expect_reject(const unsigned char *p, size_t len,
			  const char *word)
{
	struct run r;

	run_bytes(&r, p, len);
	CHECK_INT(r.ret, EINVAL);
	if (!strstr(r.err, word)) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", r.err,
			word);
		CHECK(strstr(r.err, word) != NULL);
	}
	free(r.out.p);
}

static void expect_reject_wav(const struct wav_opts *o, const char *word)
{
	struct buf w = make_wav(o);

	expect_reject(w.p, w.len, word);
	free(w.p);
}

static void rejects_not_audio(void)
{
	unsigned char rnd[4096];
	uint32_t x = 12345;

	for (size_t i = 0; i < sizeof rnd; i++) {
		x = x * 1103515245 + 12345;
		rnd[i] = (unsigned char)(x >> 16);
	}
	expect_reject((const unsigned char *)"", 0, "empty");
	expect_reject(rnd, sizeof rnd, "not audio");
	expect_reject((const unsigned char *)"RIFF\0\0", 6, "truncated");
	expect_reject((const unsigned char *)"RIFF\0\0\0\0WAVEfm", 14,
		      "truncated");
	expect_reject((const unsigned char *)"RIFF\0\0\0\0AVI LIST", 16,
		      "not WAVE");
}

static void rejects_truncated_header(void)
{
	struct wav_opts o = base(8000, 1, 800);
	struct buf w = make_wav(&o);

	for (size_t cut = 12; cut < 44; cut += 3)
		expect_reject(w.p, cut, "truncated");
	free(w.p);
}

static void rejects_unsupported_encodings(void)
{
	struct wav_opts o = base(8000, 1, 800);

	o.tag = 3;
	o.bits = 32;
	expect_reject_wav(&o, "IEEE float");
	o.tag = 0xfffe;
	o.sub = 3;
	expect_reject_wav(&o, "IEEE float");
	o = base(8000, 1, 800);
	o.bits = 24;
	expect_reject_wav(&o, "24-bit");
	o.bits = 8;
	expect_reject_wav(&o, "8-bit");
	o = base(8000, 1, 800);
	o.tag = 0x31;
	expect_reject_wav(&o, "GSM");
	o.tag = 0x11;
	expect_reject_wav(&o, "ADPCM");
	o.tag = 2;
	expect_reject_wav(&o, "ADPCM");
}

static void rejects_channels_and_rates(void)
{
	struct wav_opts o = base(8000, 3, 800);

	expect_reject_wav(&o, "channel");
	o = base(96000, 1, 800);
	expect_reject_wav(&o, "96000 Hz");
	o = base(4000, 1, 800);
	expect_reject_wav(&o, "4000 Hz");
}

static void rejects_no_samples(void)
{
	struct wav_opts o = base(8000, 1, 0);

	expect_reject_wav(&o, "no audio samples");
	o.riff = o.data = SIZE_ZERO;
	expect_reject_wav(&o, "no audio samples");
	o.data = SIZE_FFFF;
	expect_reject_wav(&o, "no audio samples");
	/* A single byte of 16-bit PCM is less than a sample. */
	o.frames = 0;
	{
		struct buf w = make_wav(&o);

		buf_put(&w, "x", 1);
		expect_reject(w.p, w.len, "no audio samples");
		free(w.p);
	}
}

static void rejects_truncated_data(void)
{
	struct wav_opts o = base(8000, 1, 8000);
	struct buf w = make_wav(&o);

	expect_reject(w.p, w.len / 2, "truncated WAV");
	free(w.p);
	o.list_before = 1;
	w = make_wav(&o);
	/* Cut inside the LIST chunk before fmt: fmt never comes. */
	expect_reject(w.p, 30, "truncated");
	free(w.p);
}

/* ---- Ogg Opus input ------------------------------------------------------ */

static struct buf encoded(uint32_t rate, int channels, size_t frames)
{
	struct wav_opts o = base(rate, channels, frames);
	struct buf w = make_wav(&o);
	struct run r;

	run_bytes(&r, w.p, w.len);
	free(w.p);
	return r.out;
}

static void ogg_opus_passthrough(void)
{
	struct buf in = encoded(16000, 2, 16000 * 5 + 17);
	struct run r;

	run_bytes(&r, in.p, in.len);
	CHECK_INT(r.ret, 0);
	CHECK_INT(r.res.input, AUDIO_FORMAT_OPUS);
	CHECK_INT(r.res.channels, 2);
	CHECK_INT(r.res.source_rate, 16000);
	CHECK_INT(r.res.samples, 16000 * 5 + 17);
	CHECK_INT(r.res.duration_ms, 5001);
	CHECK_INT(r.res.out_bytes, in.len);
	CHECK(r.out.len == in.len && memcmp(r.out.p, in.p, in.len) == 0);
	free(r.out.p);
	free(in.p);
}

static void ogg_opus_truncated(void)
{
	struct buf in = encoded(8000, 1, 8000 * 4);

	expect_reject(in.p, in.len / 2, "truncated Ogg Opus");
	expect_reject(in.p, in.len - 1, "truncated Ogg Opus");
	expect_reject(in.p, 30, "truncated Ogg Opus");
	free(in.p);
}

static void ogg_opus_corrupt(void)
{
	struct buf in = encoded(8000, 1, 8000 * 4);

	/* A flipped byte in an audio page breaks its checksum. */
	in.p[in.len / 2] ^= 0x40;
	expect_reject(in.p, in.len, "Ogg");
	free(in.p);
	/* Trailing bytes after the end-of-stream page. */
	in = encoded(8000, 1, 8000);
	buf_put(&in, "junkjunk", 8);
	expect_reject(in.p, in.len, "after the end");
	free(in.p);
}

/* An Ogg stream whose first packet is not OpusHead (Vorbis-like). */
static void ogg_not_opus(void)
{
	ogg_stream_state os;
	ogg_page og;
	struct buf b = { 0 };
	unsigned char head[30] = "\x01vorbis";
	ogg_packet op = { .packet = head, .bytes = sizeof head, .b_o_s = 1 };

	ogg_stream_init(&os, 7);
	ogg_stream_packetin(&os, &op);
	while (ogg_stream_flush(&os, &og)) {
		buf_put(&b, og.header, (size_t)og.header_len);
		buf_put(&b, og.body, (size_t)og.body_len);
	}
	ogg_stream_clear(&os);
	expect_reject(b.p, b.len, "not Opus");
	free(b.p);
}

static void ogg_opus_mapping_family(void)
{
	struct buf in = encoded(8000, 1, 8000);
	struct run r;

	/* OpusHead at 28 (one page header of 27 + 1 lacing byte); patch the
	 * mapping family and fix the page checksum. */
	in.p[28 + 18] = 1;
	{
		ogg_page og = { in.p, 28, in.p + 28, 19 };

		ogg_page_checksum_set(&og);
	}
	run_bytes(&r, in.p, in.len);
	CHECK_INT(r.ret, EINVAL);
	CHECK(strstr(r.err, "mapping family 1") != NULL);
	free(r.out.p);
	free(in.p);
}

/* ---- errors from the source and the sink --------------------------------- */

static void sink_and_source_errors(void)
{
	struct wav_opts o = base(8000, 1, 8000 * 3);
	struct buf w = make_wav(&o), in;
	struct mem m = { w.p, w.len, -1 };
	struct audio_source src = { &m, mem_pread, w.len };
	struct audio_result res;
	char err[128];

	CHECK_INT(audio_transcode(&src, &params, sink_full, NULL, &res, err,
				  sizeof err),
		  ENOSPC);
	m.fail_at = (int)w.len / 2;
	CHECK_INT(audio_transcode(&src, &params, sink_full, NULL, &res, err,
				  sizeof err),
		  ENOSPC);
	{
		struct buf out = { 0 };

		CHECK_INT(audio_transcode(&src, &params, sink_buf, &out, &res,
					  err, sizeof err),
			  EIO);
		free(out.p);
	}
	in = encoded(8000, 1, 8000 * 3);
	m.p = in.p;
	m.len = in.len;
	m.fail_at = -1;
	src.size = in.len;
	CHECK_INT(audio_transcode(&src, &params, sink_full, NULL, &res, err,
				  sizeof err),
		  ENOSPC);
	free(in.p);
	free(w.p);
}

static void sniff(void)
{
	CHECK_INT(audio_sniff("RIFF\x24\0\0\0WAVEfmt ", 16), AUDIO_FORMAT_WAV);
	CHECK_INT(audio_sniff("OggS\0\x02", 6), AUDIO_FORMAT_OPUS);
	CHECK_INT(audio_sniff("RIFF", 4), AUDIO_FORMAT_UNKNOWN);
	CHECK_INT(audio_sniff("RIFF\0\0\0\0AVI ", 12), AUDIO_FORMAT_UNKNOWN);
	CHECK_INT(audio_sniff("ID3\x04", 4), AUDIO_FORMAT_UNKNOWN);
	CHECK_INT(audio_sniff("", 0), AUDIO_FORMAT_UNKNOWN);
}

TEST_MAIN("audio",
	  T(pcm16_mono_8k), T(pcm16_stereo_16k), T(mulaw_8k), T(alaw_8k),
	  T(alaw_stereo_size_zero), T(rate_44100_resampled), T(rate_48000),
	  T(other_rates), T(extensible), T(list_before_and_after_data),
	  T(header_sizes), T(odd_length_pad_byte), T(default_params),
	  T(fmt_after_data),
	  T(long_input), T(push_equals_transcode), T(push_nothing_is_einval),
	  T(wavstream_pcm16_mono_8k), T(wavstream_pcm16_stereo_16k),
	  T(wavstream_mulaw), T(wavstream_alaw), T(wavstream_44100_resampled),
	  T(wavstream_extensible_22050_stereo), T(wavstream_header_sizes),
	  T(wavstream_exact_size_stops), T(wavstream_finish_does_all),
	  T(wavstream_again), T(wavstream_refused), T(wavstream_sink_error),
	  T(wavstream_g711_tables), T(wavstream_long_small_pushes),
	  T(rejects_not_audio), T(rejects_truncated_header),
	  T(rejects_unsupported_encodings), T(rejects_channels_and_rates),
	  T(rejects_no_samples), T(rejects_truncated_data),
	  T(ogg_opus_passthrough), T(ogg_opus_truncated), T(ogg_opus_corrupt),
	  T(ogg_not_opus), T(ogg_opus_mapping_family),
	  T(sink_and_source_errors), T(sniff))
