/* Audio: recognising the input, parsing and decoding WAV.
 *
 * WAV headers are parsed here, by a RIFF chunk walk that trusts no length
 * field, rather than by libsndfile alone: streaming writers (Asterisk,
 * ffmpeg or sox on a pipe) leave the RIFF and data sizes at 0, 0xFFFFFFFF
 * or 0x7FFFF000, and libsndfile's handling of those varies between
 * versions. libsndfile then decodes (PCM, mu-law, A-law) through a virtual
 * file that is a canonical 44-byte header, written from what the walk
 * found, followed by the data chunk's bytes read from the source: whatever
 * the original header said, libsndfile sees a consistent one. The same
 * walk, in prefix mode, serves the streaming encoder (audio_stream.c). */
#include "audio_int.h"

#include "callvault/log.h"

#include <errno.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>

#define WAV_TAG_FLOAT 0x0003
#define WAV_TAG_EXTENSIBLE 0xfffe

#define WAV_HDR_LEN 44
#define WAV_MAX_CHUNKS 4096	 /* before data: bounds the header walk */
#define WAV_FMT_READ 40		 /* what we use of a fmt chunk */
#define WAV_READ_FRAMES 2048	 /* decoded per libsndfile call */
#define WAV_SIZE_SOX_UNSPEC 0x7ffff000u /* sox on a non-seekable output */

/* libsndfile's view of the source: header + data chunk bytes. */
struct wav_vio {
	const struct audio_source *src;
	unsigned char hdr[WAV_HDR_LEN];
	uint64_t data_off, data_len;
	sf_count_t pos;
	int err;		/* errno from the source, 0 if none */
};

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static void put_le16(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, v & 0xffff);
	put_le16(p + 2, v >> 16);
}

enum audio_format audio_sniff(const void *head, size_t len)
{
	const unsigned char *p = head;

	if (len >= 12 && memcmp(p, "RIFF", 4) == 0 &&
	    memcmp(p + 8, "WAVE", 4) == 0)
		return AUDIO_FORMAT_WAV;
	/* Any Ogg stream: whether it is Opus is for audio_transcode(). */
	if (len >= 4 && memcmp(p, "OggS", 4) == 0)
		return AUDIO_FORMAT_OPUS;
	return AUDIO_FORMAT_UNKNOWN;
}

int audio_read_full(const struct audio_source *src, void *buf, size_t len,
		    uint64_t off)
{
	unsigned char *p = buf;

	if (off > src->size || src->size - off < len)
		return -1;
	while (len) {
		ssize_t n = src->pread(src->ctx, p, len, off);

		if (n < 0)
			return (int)-n;
		if (n == 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static const char *wav_tag_name(uint16_t tag)
{
	switch (tag) {
	case 0x0002: return "Microsoft ADPCM";
	case WAV_TAG_FLOAT: return "IEEE float";
	case 0x0011: return "IMA ADPCM";
	case 0x0014: return "G.723 ADPCM";
	case 0x0022: return "TrueSpeech";
	case 0x0031: return "GSM 6.10";
	case 0x0040: return "G.721 ADPCM";
	case 0x0050: return "MPEG";
	case 0x0055: return "MP3";
	case 0x0064: return "G.726 ADPCM";
	default: return NULL;
	}
}

/* KSDATAFORMAT_SUBTYPE_*: the format tag, then this fixed tail. */
static const unsigned char ks_guid_tail[14] = {
	0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
	0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
};

static int wav_parse_fmt(struct audio_wav_info *wi, const unsigned char *b,
			 uint32_t len, char *err, size_t errlen)
{
	uint16_t tag = le16(b), bits = le16(b + 14);
	unsigned ch = le16(b + 2);
	const char *name;

	if (tag == WAV_TAG_EXTENSIBLE) {
		if (len < 40 || le16(b + 16) < 22)
			return audio_bad(err, errlen,
					 "invalid WAV fmt chunk (short WAVE_FORMAT_EXTENSIBLE)");
		if (memcmp(b + 26, ks_guid_tail, sizeof ks_guid_tail) != 0)
			return audio_bad(err, errlen,
					 "unsupported WAV encoding (unknown extensible subformat)");
		tag = le16(b + 24);
	}
	switch (tag) {
	case WAV_TAG_PCM:
		if (bits != 16)
			return audio_bad(err, errlen,
					 "unsupported WAV encoding (%u-bit PCM; 16-bit only)",
					 bits);
		wi->sample_bytes = 2;
		break;
	case WAV_TAG_ALAW:
	case WAV_TAG_MULAW:
		if (bits != 8)
			return audio_bad(err, errlen,
					 "invalid WAV: G.711 %s with %u bits per sample",
					 tag == WAV_TAG_ALAW ? "A-law" : "mu-law",
					 bits);
		wi->sample_bytes = 1;
		break;
	default:
		name = wav_tag_name(tag);
		if (name)
			return audio_bad(err, errlen,
					 "unsupported WAV encoding (%s)", name);
		return audio_bad(err, errlen,
				 "unsupported WAV encoding (format tag 0x%04x)",
				 tag);
	}
	if (ch == 0)
		return audio_bad(err, errlen, "invalid WAV (0 channels)");
	if (ch > 2)
		return audio_bad(err, errlen,
				 "unsupported WAV channel count (%u; mono or stereo only)",
				 ch);
	wi->tag = tag;
	wi->channels = (int)ch;
	wi->rate = le32(b + 4);
	if (wi->rate < 8000 || wi->rate > 48000)
		return audio_bad(err, errlen,
				 "unsupported WAV sample rate (%u Hz; 8000..48000)",
				 (unsigned)wi->rate);
	return 0;
}

/* Walks the RIFF chunks to fmt and data. A data size of 0, 0xFFFFFFFF (or
 * sox's 0x7FFFF000 when it does not fit) means "to the end of the source",
 * as streaming writers leave it; the length is then rounded down to whole
 * frames, which also drops a pad byte. In prefix mode (see audio_int.h) the
 * end of the source is not the end of the file, so running out of bytes is
 * not an error and the data size is only reported. */
int audio_wav_parse(const struct audio_source *src, int prefix,
		    struct audio_wav_info *wi, char *err, size_t errlen)
{
	unsigned char riff[12], ch[8], fmt[WAV_FMT_READ];
	uint64_t off = 12, body, avail, len = 0, frame;
	uint32_t size;
	int have_fmt = 0, have_data = 0, unknown = 0, r, n;

	r = audio_read_full(src, riff, sizeof riff, 0);
	if (r > 0)
		return r;
	if (r < 0)
		return prefix ? AUDIO_WAV_MORE :
				audio_bad(err, errlen, "truncated WAV header");

	for (n = 0; !have_fmt || !have_data; n++) {
		if (n >= WAV_MAX_CHUNKS)
			return audio_bad(err, errlen,
					 "invalid WAV (too many chunks)");
		r = audio_read_full(src, ch, sizeof ch, off);
		if (r > 0)
			return r;
		if (r < 0) {
			if (prefix)
				return AUDIO_WAV_MORE;
			if (!have_fmt)
				return audio_bad(err, errlen,
						 "truncated WAV header (no fmt chunk)");
			return audio_bad(err, errlen,
					 "truncated WAV (no data chunk)");
		}
		size = le32(ch + 4);
		body = off + 8;
		avail = src->size - body;

		if (memcmp(ch, "fmt ", 4) == 0 && !have_fmt) {
			uint32_t want = size < WAV_FMT_READ ? size :
							      WAV_FMT_READ;

			if (size < 16)
				return audio_bad(err, errlen,
						 "invalid WAV fmt chunk (%u bytes)",
						 (unsigned)size);
			r = audio_read_full(src, fmt, want, body);
			if (r > 0)
				return r;
			if (r < 0)
				return prefix ? AUDIO_WAV_MORE :
						audio_bad(err, errlen,
							  "truncated WAV header (fmt chunk)");
			r = wav_parse_fmt(wi, fmt, want, err, errlen);
			if (r)
				return r;
			have_fmt = 1;
		} else if (memcmp(ch, "data", 4) == 0 && !have_data) {
			wi->data_off = body;
			if (prefix) {
				if (!have_fmt)
					return AUDIO_WAV_DATA_FIRST;
				wi->data_len = size;
				if (size == 0 || size == 0xffffffffu ||
				    size == WAV_SIZE_SOX_UNSPEC)
					wi->data_len = UINT64_MAX;
				return 0;
			}
			if (size == 0 || size == 0xffffffffu ||
			    (size == WAV_SIZE_SOX_UNSPEC && size > avail)) {
				len = avail;
				unknown = 1;
			} else if (size > avail) {
				return audio_bad(err, errlen,
						 "truncated WAV (data chunk declares %u bytes, %llu present)",
						 (unsigned)size,
						 (unsigned long long)avail);
			} else {
				len = size;
			}
			have_data = 1;
			if (!have_fmt && unknown)
				return audio_bad(err, errlen,
						 "invalid WAV (data chunk of unknown size before fmt chunk)");
		}
		off = body + size + (size & 1);
	}

	frame = (uint64_t)wi->channels * (uint64_t)wi->sample_bytes;
	len -= len % frame;
	if (len == 0)
		return audio_bad(err, errlen, "WAV has no audio samples");
	if (len > 0xffffffffu - WAV_HDR_LEN)
		return audio_bad(err, errlen,
				 "unsupported WAV (data larger than 4 GiB)");
	/* libsndfile refuses a WAV whose data starts with "OggS" or
	 * "wvpk" (it takes them for Ogg or WavPack inside WAV): refuse it
	 * here, so that the streaming encoder, which decodes without
	 * libsndfile, refuses it too. */
	if (len >= 4) {
		unsigned char mark[4];

		r = audio_read_full(src, mark, sizeof mark, wi->data_off);
		if (r > 0)
			return r;
		if (r == 0 && (memcmp(mark, "OggS", 4) == 0 ||
			       memcmp(mark, "wvpk", 4) == 0))
			return audio_bad(err, errlen,
					 "unsupported WAV (data starts with an Ogg or WavPack marker)");
	}
	wi->data_len = len;
	return 0;
}

static void wav_vio_header(struct wav_vio *v, const struct audio_wav_info *wi)
{
	unsigned char *h = v->hdr;
	uint32_t block = (uint32_t)(wi->channels * wi->sample_bytes);

	memcpy(h, "RIFF", 4);
	put_le32(h + 4, (uint32_t)(WAV_HDR_LEN - 8 + wi->data_len));
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le32(h + 16, 16);
	put_le16(h + 20, wi->tag);
	put_le16(h + 22, (uint32_t)wi->channels);
	put_le32(h + 24, wi->rate);
	put_le32(h + 28, wi->rate * block);
	put_le16(h + 32, block);
	put_le16(h + 34, (uint32_t)wi->sample_bytes * 8);
	memcpy(h + 36, "data", 4);
	put_le32(h + 40, (uint32_t)wi->data_len);
}

static sf_count_t vio_filelen(void *ctx)
{
	struct wav_vio *v = ctx;

	return (sf_count_t)(WAV_HDR_LEN + v->data_len);
}

static sf_count_t vio_seek(sf_count_t offset, int whence, void *ctx)
{
	struct wav_vio *v = ctx;
	sf_count_t base = 0, len = vio_filelen(ctx);

	if (whence == SEEK_CUR)
		base = v->pos;
	else if (whence == SEEK_END)
		base = len;
	else if (whence != SEEK_SET)
		return -1;
	/* Past the end is allowed, as lseek allows it (reads there give
	 * 0): libsndfile seeks over an odd-length data chunk's pad byte,
	 * and a refused seek would leave it reading the audio as chunk
	 * headers. */
	if (offset < -base || offset > INT64_MAX - base)
		return -1;
	v->pos = base + offset;
	return v->pos;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *ctx)
{
	struct wav_vio *v = ctx;
	unsigned char *p = ptr;
	sf_count_t done = 0, len = vio_filelen(ctx);

	if (count < 0 || v->pos >= len)
		return 0;
	if (count > len - v->pos)
		count = len - v->pos;
	while (done < count && v->pos < WAV_HDR_LEN) {
		p[done++] = v->hdr[v->pos++];
	}
	while (done < count) {
		uint64_t off = v->data_off + (uint64_t)(v->pos - WAV_HDR_LEN);
		ssize_t n = v->src->pread(v->src->ctx, p + done,
					  (size_t)(count - done), off);

		if (n < 0) {
			v->err = (int)-n;
			break;
		}
		if (n == 0) {
			v->err = EIO; /* shorter than its announced size */
			break;
		}
		done += n;
		v->pos += n;
	}
	return done;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *ctx)
{
	(void)ptr;
	(void)count;
	(void)ctx;
	return 0;
}

static sf_count_t vio_tell(void *ctx)
{
	struct wav_vio *v = ctx;

	return v->pos;
}

static int wav_transcode(const struct audio_source *src,
			 const struct audio_params *params, audio_sink_fn sink,
			 void *sink_ctx, struct audio_result *res, char *err,
			 size_t errlen)
{
	SF_VIRTUAL_IO io = {
		.get_filelen = vio_filelen,
		.seek = vio_seek,
		.read = vio_read,
		.write = vio_write,
		.tell = vio_tell,
	};
	struct wav_vio v = { .src = src };
	struct audio_encoder *enc = NULL;
	struct audio_wav_info wi;
	SF_INFO info;
	SNDFILE *sf = NULL;
	int16_t buf[WAV_READ_FRAMES * 2];
	sf_count_t frames, got = 0;
	int ret;

	memset(&wi, 0, sizeof wi);
	ret = audio_wav_parse(src, 0, &wi, err, errlen);
	if (ret)
		return ret;
	v.data_off = wi.data_off;
	v.data_len = wi.data_len;
	wav_vio_header(&v, &wi);
	frames = (sf_count_t)(wi.data_len /
			      (uint64_t)(wi.channels * wi.sample_bytes));

	memset(&info, 0, sizeof info);
	sf = sf_open_virtual(&io, SFM_READ, &info, &v);
	if (!sf) {
		if (v.err)
			return v.err;
		log_warnx("audio: libsndfile refused a checked WAV: %s",
			  sf_strerror(NULL));
		return audio_bad(err, errlen, "unreadable WAV (%s)",
				 sf_strerror(NULL));
	}
	if (info.channels != wi.channels || info.samplerate != (int)wi.rate ||
	    info.frames != frames) {
		log_warnx("audio: libsndfile disagrees with the WAV header");
		ret = EIO;
		goto out;
	}

	ret = audio_encoder_new(wi.rate, wi.channels, params, sink, sink_ctx,
				&enc, err, errlen);
	if (ret)
		goto out;
	while (got < frames) {
		sf_count_t want = frames - got, n;

		if (want > WAV_READ_FRAMES)
			want = WAV_READ_FRAMES;
		n = sf_readf_short(sf, buf, want);
		if (n <= 0) {
			ret = v.err ? v.err : EIO;
			goto out;
		}
		ret = audio_encoder_push(enc, buf, (size_t)n);
		if (ret)
			goto out;
		got += n;
	}
	ret = audio_encoder_finish(enc, res);
out:
	audio_encoder_free(enc);
	sf_close(sf);
	return ret;
}

int audio_wav_head_bad(const unsigned char *head, size_t n, char *err,
		       size_t errlen)
{
	if (n >= 4 && memcmp(head, "RIFF", 4) == 0)
		return audio_bad(err, errlen, "%s",
				 n < 12 ? "truncated WAV header" :
					  "RIFF file is not WAVE audio");
	if (n >= 4 &&
	    (memcmp(head, "RIFX", 4) == 0 || memcmp(head, "RF64", 4) == 0))
		return audio_bad(err, errlen, "unsupported WAV variant (%.4s)",
				 (const char *)head);
	return audio_bad(err, errlen, "not audio (neither WAV nor Ogg Opus)");
}

int audio_transcode(const struct audio_source *src,
		    const struct audio_params *params, audio_sink_fn sink,
		    void *sink_ctx, struct audio_result *res, char *err,
		    size_t errlen)
{
	struct audio_result local;
	unsigned char head[12];
	size_t n = sizeof head;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (src->size == 0)
		return audio_bad(err, errlen, "empty audio input");
	if (src->size < n)
		n = (size_t)src->size;
	ret = audio_read_full(src, head, n, 0);
	if (ret > 0)
		return ret;
	if (ret < 0)
		return EIO;

	switch (audio_sniff(head, n)) {
	case AUDIO_FORMAT_WAV:
		res->input = AUDIO_FORMAT_WAV;
		ret = wav_transcode(src, params, sink, sink_ctx, res, err,
				    errlen);
		break;
	case AUDIO_FORMAT_OPUS:
		res->input = AUDIO_FORMAT_OPUS;
		ret = audio_ogg_copy(src, sink, sink_ctx, res, err, errlen);
		break;
	default:
		ret = audio_wav_head_bad(head, n, err, errlen);
		break;
	}
	if (ret) {
		enum audio_format in = res->input;

		memset(res, 0, sizeof *res);
		res->input = in;
	}
	return ret;
}
