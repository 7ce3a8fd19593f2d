/* Is a file that recorders are still writing complete yet? */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "audio_int.h"

/* An Ogg stream is complete when its last page, ending exactly at the end
 * of the file, has the end-of-stream flag. Pages are at most 65307 bytes,
 * so the last one starts within that distance of the end. */
static int ogg_complete(const struct audio_source *src)
{
	unsigned char buf[65307 + 27];
	uint64_t start = src->size > sizeof buf ? src->size - sizeof buf : 0;
	size_t len = (size_t)(src->size - start);

	if (audio_read_full(src, buf, len, start) != 0)
		return 1; /* unreadable: let the commit report it */
	for (size_t i = len >= 27 ? len - 27 + 1 : 0; i-- > 0;) {
		size_t nseg, body = 0;

		if (memcmp(buf + i, "OggS", 4) != 0 || i + 27 > len)
			continue;
		nseg = buf[i + 26];
		if (i + 27 + nseg > len)
			continue;
		for (size_t k = 0; k < nseg; k++)
			body += buf[i + 27 + k];
		if (i + 27 + nseg + body != len)
			continue; /* not the page that ends the file */
		return (buf[i + 5] & 0x04) != 0;
	}
	return 0; /* the last page is still being written */
}

/* A data chunk size of 0 is the placeholder of a writer that patches the
 * sizes when it closes (Asterisk): the file is still being written. The
 * 0xFFFFFFFF of a writer on a pipe is final; nothing can check it. */
static int data_size_zero(const struct audio_source *src,
			  const struct audio_wav_info *wi)
{
	unsigned char sz[4];

	if (wi->data_off < 8 || audio_read_full(src, sz, 4, wi->data_off - 4))
		return 0;
	return sz[0] == 0 && sz[1] == 0 && sz[2] == 0 && sz[3] == 0;
}

int audio_looks_complete(const struct audio_source *src)
{
	static const unsigned char riff[4] = { 'R', 'I', 'F', 'F' };
	static const unsigned char oggs[4] = { 'O', 'g', 'g', 'S' };
	unsigned char head[12];
	size_t n = src->size < sizeof head ? (size_t)src->size : sizeof head;
	struct audio_wav_info wi;
	char err[8];
	int rc;

	if (n == 0 || audio_read_full(src, head, n, 0) != 0)
		return 0;
	switch (audio_sniff(head, n)) {
	case AUDIO_FORMAT_WAV:
		rc = audio_wav_parse(src, 1, &wi, err, sizeof err);
		if (rc == AUDIO_WAV_MORE)
			return 0;
		if (rc != 0)
			return 1; /* bad: the commit says why */
		if (wi.data_len == UINT64_MAX)
			return !data_size_zero(src, &wi);
		return wi.data_off + wi.data_len <= src->size;
	case AUDIO_FORMAT_OPUS:
		return ogg_complete(src);
	default:
		/* Too short to tell, but still a prefix of a WAV or Ogg
		 * header: more is coming. Anything else is not audio. */
		if (n < sizeof head && (memcmp(head, riff, n < 4 ? n : 4) == 0 ||
					memcmp(head, oggs, n < 4 ? n : 4) == 0))
			return 0;
		return 1;
	}
}
